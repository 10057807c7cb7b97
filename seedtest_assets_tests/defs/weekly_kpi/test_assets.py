"""weekly_kpi through Dagster on SQLite and PostgreSQL: the Monday job, checks, schedules."""

from datetime import date, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import func, select

from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.weekly_kpi.pipeline import stored_kpis
from seedtest_assets.definitions import build_defs
from seedtest_assets.defs.features_topic_daily.assets import features_topic_daily
from seedtest_assets.defs.mirt_ability.assets import mirt_ability
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.partitions import weekly
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.weekly_kpi.assets import HISTORY_WEEKS, weekly_kpi

defs = build_defs()

START = date(2026, 9, 7)
WEEKS = [START + timedelta(weeks=i) for i in range(3)]


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_monday_job_computes_kpis_with_passing_checks_and_reruns_replace(warehouse_url):
    engine = make_engine(warehouse_url)
    load(engine, generate(SyntheticConfig(n_users=400, weeks=3, seed=3, start=START)))
    resources = {"warehouse": WarehouseResource(database_url=warehouse_url)}
    with dg.instance_for_test() as instance:
        days = dg.materialize(
            [features_topic_daily],
            resources=resources,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": str(START),
                "dagster/asset_partition_range_end": str(START + timedelta(days=20)),
            },
        )
        assert days.success
        for week in WEEKS:
            result = dg.materialize(
                [mirt_item_params, mirt_ability, weekly_kpi],
                resources=resources,
                instance=instance,
                partition_key=week.isoformat(),
            )
            assert result.success
            checks = _checks(result)
            assert {n for n, e in checks.items() if e.asset_key == dg.AssetKey("weekly_kpi")} == {
                "active_students_covered",
                "values_in_range",
                "finite_values",
            }
            assert all(e.passed for e in checks.values()), {
                n: e.metadata for n, e in checks.items() if not e.passed
            }
        meta = result.asset_materializations_for_node("weekly_kpi")[0].metadata
        assert meta["students"].value > 300
        assert meta["ability_week"].value == str(WEEKS[-1])
        assert meta["as_of"].value == str(WEEKS[-1] + timedelta(days=7))
        assert 0 < meta["mean_S"].value < 1 and 0 < meta["mean_P"].value < 1

        stored = stored_kpis(engine, WEEKS[-1])
        assert stored.height == meta["students"].value
        assert stored["theta_prev"].drop_nulls().len() > 0  # the week before was scored
        # Re-running the week replaces its rows.
        again = dg.materialize(
            [weekly_kpi], resources=resources, instance=instance, partition_key=str(WEEKS[-1])
        )
        assert again.success
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count())
            .select_from(s.weekly_kpi)
            .where(s.weekly_kpi.c.week_start == WEEKS[-1])
        ).scalar_one()
    assert n == stored.height
    engine.dispose()


def test_coverage_check_fails_when_an_active_student_has_no_row(sqlite_url):
    from seedtest_assets.core.weekly_kpi.pipeline import materialize_weekly_kpi
    from seedtest_assets.defs.weekly_kpi.checks import kpi_check_results

    engine = make_engine(sqlite_url)
    load(engine, generate(SyntheticConfig(n_users=150, weeks=1, seed=4, start=START)))
    from seedtest_assets.core.features_topic_daily.pipeline import materialize_features

    now = datetime(2026, 11, 22)
    materialize_features(engine, START, START + timedelta(days=7), now=now)
    run = materialize_weekly_kpi(engine, START, now=now)
    victim = run.kpis.filter(run.kpis["active_this_week"])["user_id"][0]
    with engine.begin() as conn:
        conn.execute(s.weekly_kpi.delete().where(s.weekly_kpi.c.user_id == victim))
    results = {
        r.check_name: r for r in kpi_check_results(WarehouseResource(database_url=sqlite_url), run)
    }
    covered = results["active_students_covered"]
    assert not covered.passed and covered.metadata["missing"].value == 1
    assert victim.startswith("u-")  # a generated text id
    assert covered.metadata["sample_user_ids"].value == [victim]
    # Without abilities (no calibration yet) the KPIs still exist, with null I_t / P.
    assert run.ability_week is None and run.kpis["I_t"].null_count() == run.kpis.height
    assert results["values_in_range"].passed and results["finite_values"].passed
    engine.dispose()


def test_lineage_reads_eight_weeks_of_days_and_the_weeks_abilities():
    graph = defs.resolve_asset_graph()
    kpi = dg.AssetKey("weekly_kpi")
    assert graph.get(kpi).parent_keys == {
        dg.AssetKey("features_topic_daily"),
        dg.AssetKey("mirt_ability"),
    }
    assert graph.get(kpi).partitions_def == weekly
    days = graph.get_partition_mapping(kpi, dg.AssetKey("features_topic_daily"))
    assert (days.start_offset, days.end_offset) == (-HISTORY_WEEKS, 0) == (-7, 0)
    mapped = days.get_upstream_mapped_partitions_result_for_partitions(
        weekly.empty_subset().with_partition_keys(["2026-11-09"]),
        weekly,
        graph.get(dg.AssetKey("features_topic_daily")).partitions_def,
    ).partitions_subset.get_partition_keys()
    assert (min(mapped), max(mapped), len(mapped)) == ("2026-09-21", "2026-11-15", 56)
    # The week's abilities only: a backfill of weeks W1..W3 re-computes exactly W1..W3.
    ability = graph.get_partition_mapping(kpi, dg.AssetKey("mirt_ability"))
    downstream = ability.get_downstream_partitions_for_partitions(
        weekly.empty_subset().with_partition_keys(["2026-11-09"]), weekly, weekly
    ).get_partition_keys()
    assert list(downstream) == ["2026-11-09"]


@pytest.mark.parametrize(
    ("when", "week"),
    [
        (datetime(2026, 11, 18, 2, 10), "2026-11-16"),  # Wednesday: the week in progress
        (datetime(2026, 11, 22, 2, 10), "2026-11-16"),  # Sunday: still this week
        (datetime(2026, 11, 23, 2, 10), "2026-11-16"),  # Monday: the week that just ended
        (datetime(2026, 11, 24, 2, 10), "2026-11-23"),  # Tuesday: the new week
    ],
)
def test_daily_refresh_picks_the_week_containing_yesterday(when, week):
    schedule = defs.get_schedule_def("weekly_kpi_schedule")
    assert schedule.cron_schedule == "10 2 * * *" and schedule.execution_timezone == "UTC"
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=when,
            repository_def=defs.get_repository_def(),
        )
        (request,) = schedule.evaluate_tick(ctx).run_requests
    assert request.partition_key == week
    assert request.run_key == f"weekly_kpi:{week}:{(when - timedelta(days=1)).date()}"


def test_monday_job_finalizes_the_week_that_just_ended():
    schedule = defs.get_schedule_def("mirt_weekly_schedule")
    assert schedule.cron_schedule == "10 3 * * 1"
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 23, 3, 10),
            repository_def=defs.get_repository_def(),
        )
        (request,) = schedule.evaluate_tick(ctx).run_requests
    assert request.partition_key == "2026-11-16"
    job = defs.resolve_job_def("mirt_weekly_job")
    assert {"mirt_item_params", "mirt_ability", "weekly_kpi"} <= set(job.graph.node_names())
    # The week in progress is a partition (the daily refresh); calibration never picks it.
    with dg.partition_loading_context(effective_dt=datetime(2026, 11, 22, 12)):
        assert weekly.get_last_partition_key() == "2026-11-16"
