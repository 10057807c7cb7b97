"""Online ability update: hand-checked EAP, versioned rows, no-ops, the switch, the job."""

from datetime import datetime, timedelta

import dagster as dg
import numpy as np
import pytest
from sqlalchemy import select

from seedtest_assets.mirt_ability.assets import STUDENT_ABILITY
from seedtest_assets.mirt_ability.jobs import student_rescore_job
from seedtest_assets.mirt_ability.online import (
    ThetaResult,
    online_updates_enabled,
    update_theta,
)
from seedtest_assets.partitions import users
from seedtest_assets.resources import WarehouseResource
from seedtest_assets.settings import utc_now
from seedtest_assets.warehouse import make_engine, read_frame
from seedtest_assets.warehouse import schema as s
from seedtest_assets_tests.online_factories import ITEM_PARAMS, seed_scoring

NOW = datetime(2026, 3, 11, 12, 30)


def eap_by_hand(responses: list[tuple[int, bool]]) -> tuple[float, float]:
    """Posterior mean and SD under N(0, 1) by brute-force quadrature (20,001 points)."""
    theta = np.linspace(-10, 10, 20_001)
    log_post = -0.5 * theta**2
    for item, correct in responses:
        a, d = ITEM_PARAMS[item]
        p = 1 / (1 + np.exp(-(a * theta + d)))
        log_post += np.log(p if correct else 1 - p)
    w = np.exp(log_post - log_post.max())
    mean = (w * theta).sum() / w.sum()
    return mean, np.sqrt((w * (theta - mean) ** 2).sum() / w.sum())


def stored_rows(url: str):
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = read_frame(conn, select(s.mirt_ability).order_by(s.mirt_ability.c.user_id))
    engine.dispose()
    return rows


def test_update_writes_a_versioned_online_row_matching_a_hand_computed_eap(warehouse_url):
    version = seed_scoring(warehouse_url, NOW)
    engine = make_engine(warehouse_url)
    update = update_theta(engine, [1, 2, 3, 4, 1], now=NOW)
    engine.dispose()

    by_user = {r.user_id: r for r in update.results}
    assert list(by_user) == [1, 2, 3, 4]  # request order, duplicates once
    theta, se = eap_by_hand([(100, True), (101, False)])
    one = by_user[1]
    assert one.status == "ok" and one.version == version and one.model == "2PL"
    assert one.theta == pytest.approx(theta, abs=1e-6)
    assert one.se == pytest.approx(se, abs=1e-6)
    assert one.n_responses == 2 and one.updated_at == NOW
    two = by_user[2]
    assert two.theta == pytest.approx(eap_by_hand([(200, True)])[0], abs=1e-6)
    # No attempts at all, or only rejected ones: a clear no-op each.
    assert by_user[3].status == by_user[4].status == "noop"
    assert "no scorable attempts for user 3 in the last 84 days" in by_user[3].message

    rows = stored_rows(warehouse_url)
    assert rows["user_id"].to_list() == [1, 2]
    assert set(rows["source"]) == {"online"} and set(rows["version"]) == {version}
    assert rows["fitted_at"].to_list() == [NOW, NOW]
    assert rows["week_start"][0].isoformat() == version.split("@")[1]


def test_lookback_days_limits_the_evidence(sqlite_url):
    seed_scoring(sqlite_url, NOW)
    engine = make_engine(sqlite_url)
    update = update_theta(engine, [2], now=NOW, lookback_days=30, source="on_demand")
    assert update.results[0].status == "noop" and "last 30 days" in update.results[0].message
    assert update.rows.height == 0
    update = update_theta(engine, [2], now=NOW, lookback_days=61, source="on_demand")
    assert update.results[0].status == "ok"
    engine.dispose()
    assert stored_rows(sqlite_url)["source"].to_list() == ["on_demand"]
    with pytest.raises(ValueError, match="lookback_days"):
        update_theta(make_engine(sqlite_url), [2], now=NOW, lookback_days=0)


def test_without_any_calibration_everyone_is_a_noop(sqlite_url):
    seed_scoring(sqlite_url, NOW)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(s.mirt_item_params.delete())
    update = update_theta(engine, [1], now=NOW)
    engine.dispose()
    assert update.results[0].status == "noop"
    assert "no 2PL item parameters calibrated yet" in update.results[0].message
    assert stored_rows(sqlite_url).height == 0


def test_api_fields_are_the_originals():
    ok = ThetaResult(7, "ok", 0.5, 0.3, "2PL", "2PL@2026-03-02", NOW, 12)
    assert ok.to_api() == {
        "status": "ok",
        "user_id": 7,
        "theta": 0.5,
        "se": 0.3,
        "model": "2PL",
        "version": "2PL@2026-03-02",
        "updated_at": "2026-03-11T12:30:00Z",
    }
    noop = ThetaResult(7, "noop", message="nothing")
    assert noop.to_api() == {"status": "noop", "user_id": 7, "message": "nothing"}


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, True), ("true", True), ("1", True), ("false", False), ("OFF", False), ("0", False)],
)
def test_switch(value, enabled):
    env = {} if value is None else {"ENABLE_IRT_ONLINE_UPDATE": value}
    assert online_updates_enabled(env) is enabled


def test_rescore_job_writes_rows_and_records_each_student_in_the_ui(sqlite_url):
    now = utc_now()
    version = seed_scoring(sqlite_url, now)
    with dg.instance_for_test() as instance:
        result = student_rescore_job.execute_in_process(
            run_config={"ops": {"rescore_students": {"config": {"user_ids": [1, 2, 3]}}}},
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
        )
        assert result.success
        output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
        summary = {k: v.value for k, v in output.event_specific_data.metadata.items()}
        assert summary["scored"] == 2 and summary["noop"] == 1
        assert summary["per_student_events"] == "batched"
        mats = instance.get_materialized_partitions(STUDENT_ABILITY)
        assert mats == {"1", "2"}  # the no-op student 3 is not recorded
        assert set(instance.get_dynamic_partitions(users.name)) == {"1", "2"}
        event = instance.get_latest_materialization_event(STUDENT_ABILITY)
        meta = event.asset_materialization.metadata
        assert meta["source"].value == "online" and meta["version"].value == version
        assert meta["updated_at"].value.endswith("Z")
    rows = stored_rows(sqlite_url)
    assert rows["user_id"].to_list() == [1, 2] and set(rows["source"]) == {"online"}
    assert abs(rows["fitted_at"][0] - now) < timedelta(minutes=1)


def test_rescore_job_with_only_noop_students_succeeds(sqlite_url):
    seed_scoring(sqlite_url, utc_now())
    with dg.instance_for_test() as instance:
        result = student_rescore_job.execute_in_process(
            run_config={"ops": {"rescore_students": {"config": {"user_ids": [3, 4]}}}},
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
        )
        assert result.success
        assert instance.get_materialized_partitions(STUDENT_ABILITY) == set()
    assert stored_rows(sqlite_url).height == 0
