"""Weekly calibration and scoring through Dagster on a small generated population.

The code's clock is frozen in every test (the ``clock`` fixture, here at ``MONDAY_MORNING``
unless parametrized): "the latest week" is computed from that clock, never from the real one.
"""

from datetime import date

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import func, select

from seedtest_assets.core.mirt_ability.pipeline import score_students
from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.mirt_ability.assets import (
    STUDENT_ABILITY,
    mirt_ability,
    student_mirt_ability,
)
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.partitions import last_complete_week, users
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets_tests.clock import MONDAY_MORNING, SUNDAY_NIGHT

#: The population's 3 weeks end with the last complete week at MONDAY_MORNING (2026-03-09); on
#: SUNDAY_NIGHT, 20 s earlier, the last complete week is the one before (2026-03-02).
WEEKS = [date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9)]
START = WEEKS[0]
#: Where the ``clock`` fixture freezes the code's clock unless a test is parametrized.
FROZEN_NOW = MONDAY_MORNING


@pytest.fixture(scope="module")
def population_url(tmp_path_factory) -> str:
    from seedtest_assets.core.warehouse import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('irt') / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    load(engine, generate(SyntheticConfig(n_users=600, weeks=3, seed=11, start=START)))
    engine.dispose()
    return url


def materialize(url, assets, instance, partition_key):
    return dg.materialize(
        assets,
        resources={"warehouse": WarehouseResource(database_url=url)},
        instance=instance,
        partition_key=partition_key,
    )


def test_weekly_calibration_and_scoring_with_checks_and_per_student_events(population_url, clock):
    engine = make_engine(population_url)
    with dg.instance_for_test() as instance:
        for week in WEEKS:
            result = materialize(population_url, [mirt_item_params], instance, week.isoformat())
            checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
            assert checks == {
                "converged": True,
                "plausible_parameters": True,
                "student_share": True,
            }
        meta = result.asset_materializations_for_node("mirt_item_params")[0].metadata
        assert meta["link_common_items"].value >= 10  # linked to the previous week
        assert 0.5 < meta["link_A"].value < 2.0

        # Re-running a week replaces its rows.
        materialize(population_url, [mirt_item_params], instance, WEEKS[-1].isoformat())
        with engine.connect() as conn:
            per_week = dict(
                conn.execute(
                    select(s.mirt_item_params.c.week_start, func.count()).group_by(
                        s.mirt_item_params.c.week_start
                    )
                ).all()
            )
        assert len(set(per_week.values())) == 1 and len(per_week) == 3

        result = materialize(population_url, [mirt_ability], instance, WEEKS[-1].isoformat())
        assert all(c.passed for c in result.get_asset_check_evaluations())
        with engine.connect() as conn:
            rows = read_frame(conn, select(s.mirt_ability))
        assert rows.height > 500 and set(rows["source"]) == {"weekly"}
        assert rows["version"][0] == f"2PL@{WEEKS[-1]}"

    # Scores track the generator's truth.
    with engine.connect() as conn:
        truth = read_frame(
            conn,
            select(s.truth_theta_weekly).where(s.truth_theta_weekly.c.week_start == WEEKS[-1]),
        )
    joined = rows.join(truth, on=["user_id", "week_start"], suffix="_true")
    assert joined.select(pl.corr("theta", "theta_true")).item() > 0.85
    engine.dispose()


@pytest.mark.parametrize(
    "clock",
    [
        pytest.param(SUNDAY_NIGHT, id="sunday-23:59:50"),
        pytest.param(MONDAY_MORNING, id="monday-00:00:10"),
    ],
    indirect=True,
)
def test_per_student_events_use_the_batched_internal_api_and_show_per_partition(
    population_url, clock
):
    """Pins dagster's internal batched event API (ADR 0001): if it moves, this fails. The
    latest week is the last complete week at the moment of the run, by the code's clock."""
    latest = last_complete_week(clock.now)
    assert latest in {w.isoformat() for w in WEEKS}
    with dg.instance_for_test() as instance:
        result = materialize(population_url, [mirt_item_params, mirt_ability], instance, latest)
        mat = result.asset_materializations_for_node("mirt_ability")[0]
        assert mat.metadata["per_student_events"].value == "batched"
        keys = instance.get_dynamic_partitions(users.name)
        assert len(keys) == mat.metadata["students"].value > 0
        recorded = instance.get_materialized_partitions(STUDENT_ABILITY)
        assert recorded == set(keys)
        event = instance.get_latest_materialization_event(STUDENT_ABILITY)
        assert event.asset_materialization.metadata["week_start"].value == latest


def test_student_rescore_on_demand_and_noop(population_url, clock):
    engine = make_engine(population_url)
    with engine.connect() as conn:  # a student who practised in the last week
        student = conn.execute(
            select(s.attempts.c.user_id).where(s.attempts.c.attempted_at >= WEEKS[-1]).limit(1)
        ).scalar_one()
    with dg.instance_for_test() as instance:
        materialize(population_url, [mirt_item_params], instance, WEEKS[-1].isoformat())
        instance.add_dynamic_partitions(users.name, [str(student), "99999999"])
        result = materialize(population_url, [student_mirt_ability], instance, str(student))
        meta = result.asset_materializations_for_node("student__mirt_ability")[0].metadata
    assert meta["scored"].value == 1 and -6 < meta["theta"].value < 6 and meta["se"].value > 0
    with engine.connect() as conn:
        row = (
            conn.execute(select(s.mirt_ability).where(s.mirt_ability.c.source == "on_demand"))
            .mappings()
            .one()
        )
    assert row["user_id"] == student
    # A student with no attempts is a clear no-op, not an error.
    run = score_students(engine, [99999999], now=clock.now)
    assert run.rows.height == 0
    engine.dispose()
