"""A week with no data is an empty, successful partition; a re-run with no data never wipes one."""

from datetime import date, timedelta

import dagster as dg
import pytest
from sqlalchemy import delete, func, select

from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.mirt_ability.assets import mirt_ability
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.weekly_kpi.assets import weekly_kpi

START = date(2026, 3, 2)  # a Monday; the data cover START's week only


@pytest.fixture
def one_week_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    load(engine, generate(SyntheticConfig(n_users=150, weeks=1, seed=5, start=START)))
    engine.dispose()
    return url


def _run(url, week: date, instance):
    return dg.materialize(
        [mirt_item_params, mirt_ability, weekly_kpi],
        resources={"warehouse": WarehouseResource(database_url=url)},
        instance=instance,
        partition_key=week.isoformat(),
        raise_on_error=False,
    )


def _count(url, table) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return n


def test_a_week_before_the_data_succeeds_empty_with_a_note(one_week_url):
    with dg.instance_for_test() as instance:
        result = _run(one_week_url, START - timedelta(weeks=20), instance)
    assert result.success
    meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    assert "nothing to calibrate" in meta["mirt_item_params"]["note"].value
    assert meta["mirt_item_params"]["items"].value == 0
    assert "nothing scored" in meta["mirt_ability"]["note"].value
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert _count(one_week_url, s.mirt_item_params) == _count(one_week_url, s.mirt_ability) == 0


def test_a_rerun_that_finds_no_attempts_fails_and_keeps_the_rows(one_week_url):
    with dg.instance_for_test() as instance:
        assert _run(one_week_url, START, instance).success
        items, abilities = (
            _count(one_week_url, s.mirt_item_params),
            _count(one_week_url, s.mirt_ability),
        )
        assert items > 0 and abilities > 0
        engine = make_engine(one_week_url)
        with engine.begin() as conn:  # the feed lost the week (or someone deleted it)
            conn.execute(delete(s.attempts))
        engine.dispose()
        result = _run(one_week_url, START, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "refusing to replace them with nothing" in str(failure.event_specific_data.error)
    assert _count(one_week_url, s.mirt_item_params) == items
    assert _count(one_week_url, s.mirt_ability) == abilities
