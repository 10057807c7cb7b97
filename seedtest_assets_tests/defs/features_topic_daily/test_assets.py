"""features_topic_daily and user_inactivity through Dagster: ranged runs, checks, schedules."""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl
from sqlalchemy import func, select

from seedtest_assets.core.warehouse import make_engine
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.definitions import build_defs
from seedtest_assets.defs.features_topic_daily.assets import features_topic_daily
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.user_inactivity.assets import user_inactivity
from seedtest_assets_tests.factories import DAY, insert_attempts, planted_day, seed_reference

defs = build_defs()

RANGE_TAGS = {
    "dagster/asset_partition_range_start": str(DAY),
    "dagster/asset_partition_range_end": str(DAY + timedelta(days=1)),  # inclusive
}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_range_of_days_is_one_run_and_checks_flag_planted_rows(sqlite_url):
    seed_reference(sqlite_url)
    day1, expected = planted_day(DAY)
    insert_attempts(sqlite_url, day1)
    day2, _ = planted_day(DAY + timedelta(days=1))
    insert_attempts(
        sqlite_url, day2.filter(pl.col("id") <= 6).unique("id").with_columns(pl.col("id") + 100)
    )

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [features_topic_daily, user_inactivity],
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
            tags=RANGE_TAGS,
        )
        assert result.success
        runs = instance.get_runs()
        assert len(runs) == 1  # two days, two assets, one run
        mats = result.asset_materializations_for_node("features_topic_daily")
        assert sorted(m.partition for m in mats) == [str(DAY), str(DAY + timedelta(days=1))]
        meta = mats[0].metadata
        assert meta["rejected_rows"].value == sum(expected.values())
        assert meta["valid_rows"].value == 12

    checks = check_results(result)
    assert checks["attempts_reconcile"].passed
    assert checks["values_in_range"].passed
    assert not checks["no_rejected_attempts"].passed  # planted bad rows are surfaced...
    assert checks["no_rejected_attempts"].severity == dg.AssetCheckSeverity.WARN  # ...as a warning
    assert checks["no_rejected_attempts"].metadata["rejected_rows"].value == sum(expected.values())
    assert checks["every_student_has_a_row"].passed
    assert checks["status_consistent"].passed

    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(s.features_topic_daily)).scalar_one()
    assert n == 6


def test_clean_partition_passes_every_check(sqlite_url):
    seed_reference(sqlite_url)
    frame, _ = planted_day(DAY)
    insert_attempts(sqlite_url, frame.filter(frame["id"] <= 6).unique("id"))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [features_topic_daily],
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
            partition_key=str(DAY),
        )
    checks = check_results(result)
    assert all(c.passed for c in checks.values()), checks


def test_reconcile_check_fails_when_rows_go_missing(sqlite_url, monkeypatch):
    """The reconcile check reads the warehouse: lose a feature row and it fails."""
    seed_reference(sqlite_url)
    frame, _ = planted_day(DAY)
    insert_attempts(sqlite_url, frame)
    import seedtest_assets.core.features_topic_daily.table as features_table

    real = features_table.replace_rows

    def lossy(conn, table, where, frame, **kwargs):
        if table is s.features_topic_daily:
            frame = frame.head(frame.height - 1)
        return real(conn, table, where, frame, **kwargs)

    monkeypatch.setattr(features_table, "replace_rows", lossy)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [features_topic_daily],
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
            partition_key=str(DAY),
        )
    assert not check_results(result)["attempts_reconcile"].passed


def test_schedules_match_the_original_cron_and_pick_yesterday():
    features = defs.get_schedule_def("features_topic_daily_schedule")
    inactivity = defs.get_schedule_def("user_inactivity_schedule")
    assert features.cron_schedule == "15 1 * * *"
    assert inactivity.cron_schedule == "0 5 * * *"
    assert features.execution_timezone == inactivity.execution_timezone == "UTC"
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 22, 1, 15)
        )
        requests = features.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-21"]


def test_definitions_load_with_expected_graph():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"attempts", "features_topic_daily", "user_inactivity"} <= keys
    parents = graph.get(dg.AssetKey("user_inactivity")).parent_keys
    assert parents == {dg.AssetKey("features_topic_daily")}
    features = dg.AssetKey("features_topic_daily")
    # attempts, and its own previous 7 days (improvement compares with them)
    assert graph.get(features).parent_keys == {dg.AssetKey("attempts"), features}
    mapping = graph.get_partition_mapping(features, features)
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert (mapping.start_offset, mapping.end_offset) == (-7, -1)
