"""``topic_ability`` through Dagster on SQLite and PostgreSQL: the stored week, its checks, a
re-run that replaces, an empty week's note, and where it sits in the graph and the jobs."""

import time
from datetime import date, timedelta

import dagster as dg
import pytest
from sqlalchemy import func, select

from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.definitions import build_defs
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.partitions import weekly
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.topic_ability.assets import topic_ability
from seedtest_assets_tests.clock import MONDAY_MORNING
from seedtest_assets_tests.conftest import create_postgres_database, drop_postgres_database

WEEKS = [date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9)]
START = WEEKS[0]
FROZEN_NOW = MONDAY_MORNING
USERS = 300


def materialize(url, assets, instance, week: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={"warehouse": WarehouseResource(database_url=url)},
        instance=instance,
        partition_key=week.isoformat(),
    )


def stored(url, week: date) -> tuple[int, int]:
    """(rows, keys) of the week: keys = distinct (user, topic)."""
    t = s.topic_ability
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(func.count()).select_from(t).where(t.c.week_start == week)
        ).scalar_one()
        keys = conn.execute(
            select(func.count()).select_from(
                select(t.c.user_id, t.c.topic_id)
                .where(t.c.week_start == week)
                .distinct()
                .subquery()
            )
        ).scalar_one()
    engine.dispose()
    return rows, keys


def scenario(url: str) -> dict[str, float]:
    engine = make_engine(url)
    load(engine, generate(SyntheticConfig(n_users=USERS, weeks=3, seed=11, start=START)))
    engine.dispose()
    seconds = {}
    with dg.instance_for_test() as instance:
        for week in WEEKS:
            t0 = time.perf_counter()
            result = materialize(url, [mirt_item_params, topic_ability], instance, week)
            assert result.success
            checks = {
                c.check_name: c.passed
                for c in result.get_asset_check_evaluations()
                if c.asset_key == topic_ability.key
            }
            assert checks == {"finite_estimates": True, "one_row_per_key": True}
            meta = result.asset_materializations_for_node("topic_ability")[0].metadata
            seconds[week.isoformat()] = meta["seconds_total"].value
            assert time.perf_counter() - t0 < 120
        assert meta["version"].value == f"2PL@{WEEKS[-1]}" and meta["model"].value == "2PL"
        assert meta["students"].value > USERS // 2 and meta["topics"].value > 3
        rows, keys = stored(url, WEEKS[-1])
        assert rows == keys == meta["rows"].value > meta["students"].value

        # A re-run replaces the week: same keys, no duplicates, checks pass again.
        again = materialize(url, [topic_ability], instance, WEEKS[-1])
        assert all(c.passed for c in again.get_asset_check_evaluations())
        assert stored(url, WEEKS[-1]) == (rows, keys)

        # A week before the data (nothing calibrated on or before it): empty, with a note.
        empty_week = START - timedelta(weeks=4)
        empty = materialize(url, [topic_ability], instance, empty_week)
        assert empty.success
        m = empty.asset_materializations_for_node("topic_ability")[0].metadata
        assert "nothing calibrated" in m["note"].value and m["rows"].value == 0
        assert all(c.passed for c in empty.get_asset_check_evaluations())
        assert stored(url, empty_week) == (0, 0)
    return seconds


def test_weekly_topic_ability_on_sqlite(sqlite_url, clock):
    seconds = scenario(sqlite_url)
    print(f"topic_ability seconds per week ({USERS} students, SQLite): {seconds}")


@pytest.mark.postgres
def test_weekly_topic_ability_on_postgres(clock):
    from seedtest_assets_tests.conftest import _require_postgres

    _require_postgres()
    url = create_postgres_database("seedtest_topic")
    try:
        upgrade(url)
        seconds = scenario(url)
        print(f"topic_ability seconds per week ({USERS} students, PostgreSQL): {seconds}")
    finally:
        drop_postgres_database(url)


def test_lineage_jobs_and_pod():
    defs = build_defs()
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("topic_ability")
    node = graph.get(key)
    assert node.parent_keys == {dg.AssetKey("attempts"), dg.AssetKey("mirt_item_params")}
    assert node.partitions_def == weekly and node.group_name == "irt"
    # The same week's item parameters (the default identity mapping of one weekly def).
    mapping = graph.get_partition_mapping(key, dg.AssetKey("mirt_item_params"))
    one = weekly.empty_subset().with_partition_keys(["2026-11-09"])
    assert list(
        mapping.get_downstream_partitions_for_partitions(one, weekly, weekly).get_partition_keys()
    ) == ["2026-11-09"]
    # Where topic θ comes from: the weekly reports and the per-student report read it.
    assert key in graph.get(dg.AssetKey("report_artifacts")).parent_keys
    student = dg.AssetKey(["student", "report_artifacts"])
    assert key in graph.get(student).parent_keys
    assert isinstance(graph.get_partition_mapping(student, key), dg.AllPartitionMapping)
    # The Monday batch computes it, on the IRT pod.
    job = defs.resolve_job_def("mirt_weekly_job")
    assert {"mirt_item_params", "mirt_ability", "topic_ability"} <= set(job.graph.node_names())
    assert topic_ability.op.tags == defs.resolve_assets_def("mirt_ability").op.tags
