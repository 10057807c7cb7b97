"""Online ability update: hand-checked EAP, versioned rows, no-ops, the switch, the job."""

from datetime import datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest
from sqlalchemy import select

from seedtest_assets.core.mirt_ability.online import (
    ThetaResult,
    online_updates_enabled,
    update_theta,
)
from seedtest_assets.core.mirt_ability.pipeline import population_prior
from seedtest_assets.core.warehouse import insert_frame, make_engine, read_frame, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.automation.jobs import student_rescore_job
from seedtest_assets.defs.mirt_ability.assets import STUDENT_ABILITY
from seedtest_assets.defs.partitions import users
from seedtest_assets.defs.resources import WarehouseResource
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


def growth_by_hand(
    responses: list[tuple[int, bool, float]], prior=(0.0, 1.0, 0.0, 0.1)
) -> tuple[float, float]:
    """The growth line's ability at t = 0 (MAP of level, growth under independent normal
    priors; responses (item, correct, t in weeks)) and its Laplace SD from the expected
    information: the quantity ``mirt_ability.theta`` holds (docs/irt.md, "One theta")."""
    from scipy.optimize import minimize

    m_l, s_l, m_g, s_g = prior
    a = np.array([ITEM_PARAMS[i][0] for i, _, _ in responses])
    d = np.array([ITEM_PARAMS[i][1] for i, _, _ in responses])
    y = np.array([float(c) for _, c, _ in responses])
    t = np.array([w for _, _, w in responses])

    def neg_log_post(x):
        z = a * (x[0] + x[1] * t) + d
        ll = np.sum(y * z - np.logaddexp(0, z))
        return -(ll - 0.5 * ((x[0] - m_l) / s_l) ** 2 - 0.5 * ((x[1] - m_g) / s_g) ** 2)

    x = minimize(neg_log_post, [0.0, 0.0], method="BFGS", options={"gtol": 1e-12}).x
    p = 1 / (1 + np.exp(-(a * (x[0] + x[1] * t) + d)))
    w = a * a * p * (1 - p)
    info = np.array([[w.sum(), (w * t).sum()], [(w * t).sum(), (w * t * t).sum()]])
    info += np.diag([1 / s_l**2, 1 / s_g**2])
    return float(x[0]), float(np.sqrt(np.linalg.inv(info)[0, 0]))


def stored_rows(url: str):
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = read_frame(conn, select(s.mirt_ability).order_by(s.mirt_ability.c.user_id))
    engine.dispose()
    return rows


def test_update_writes_a_versioned_online_row_matching_a_hand_computed_eap(warehouse_url):
    version = seed_scoring(warehouse_url, NOW)
    engine = make_engine(warehouse_url)
    update = update_theta(engine, ["1", "2", "3", "4", "1"], now=NOW)
    engine.dispose()

    by_user = {r.user_id: r for r in update.results}
    assert list(by_user) == ["1", "2", "3", "4"]  # request order, duplicates once
    # theta: the growth line at NOW (no weekly population yet: the default prior).
    day, minute = -1 / 7, 1 / (7 * 24 * 60)
    theta, se = growth_by_hand([(100, True, day), (101, False, day + minute)])
    one = by_user["1"]
    assert one.status == "ok" and one.version == version and one.model == "2PL"
    assert one.theta == pytest.approx(theta, abs=1e-5)
    assert one.se == pytest.approx(se, abs=1e-5)
    assert one.n_responses == 2 and one.updated_at == NOW
    two = by_user["2"]
    assert two.theta == pytest.approx(growth_by_hand([(200, True, -60 / 7)])[0], abs=1e-5)
    # No attempts at all, or only rejected ones: a clear no-op each.
    assert by_user["3"].status == by_user["4"].status == "noop"
    assert "no scorable attempts for user 3 in the last 84 days" in by_user["3"].message

    rows = stored_rows(warehouse_url)
    assert rows["user_id"].to_list() == ["1", "2"]
    assert rows["theta"].to_list() == [one.theta, two.theta]  # the answer is the row
    # The window's constant-ability EAP is kept under its own name.
    window, window_se = eap_by_hand([(100, True), (101, False)])
    assert rows["theta_window"][0] == pytest.approx(window, abs=1e-6)
    assert rows["theta_window_se"][0] == pytest.approx(window_se, abs=1e-6)
    assert set(rows["source"]) == {"online"} and set(rows["version"]) == {version}
    assert rows["fitted_at"].to_list() == [NOW, NOW]
    assert rows["week_start"][0].isoformat() == version.split("@")[1]


def test_lookback_days_limits_the_evidence(sqlite_url):
    seed_scoring(sqlite_url, NOW)
    engine = make_engine(sqlite_url)
    update = update_theta(engine, ["2"], now=NOW, lookback_days=30, source="on_demand")
    assert update.results[0].status == "noop" and "last 30 days" in update.results[0].message
    assert update.rows.height == 0
    update = update_theta(engine, ["2"], now=NOW, lookback_days=61, source="on_demand")
    assert update.results[0].status == "ok"
    engine.dispose()
    assert stored_rows(sqlite_url)["source"].to_list() == ["on_demand"]
    with pytest.raises(ValueError, match="lookback_days"):
        update_theta(make_engine(sqlite_url), ["2"], now=NOW, lookback_days=0)


def test_without_any_calibration_everyone_is_a_noop(sqlite_url):
    seed_scoring(sqlite_url, NOW)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(s.mirt_item_params.delete())
    update = update_theta(engine, ["1"], now=NOW)
    engine.dispose()
    assert update.results[0].status == "noop"
    assert "no 2PL item parameters calibrated yet" in update.results[0].message
    assert stored_rows(sqlite_url).height == 0


def test_api_fields_are_the_originals():
    ok = ThetaResult("test-user-7", "ok", 0.5, 0.3, "2PL", "2PL@2026-03-02", NOW, 12)
    assert ok.to_api() == {
        "status": "ok",
        "user_id": "test-user-7",
        "theta": 0.5,
        "se": 0.3,
        "model": "2PL",
        "version": "2PL@2026-03-02",
        "updated_at": "2026-03-11T12:30:00Z",
    }
    noop = ThetaResult("test-user-7", "noop", message="nothing")
    assert noop.to_api() == {"status": "noop", "user_id": "test-user-7", "message": "nothing"}


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, True), ("true", True), ("1", True), ("false", False), ("OFF", False), ("0", False)],
)
def test_switch(value, enabled):
    env = {} if value is None else {"ENABLE_IRT_ONLINE_UPDATE": value}
    assert online_updates_enabled(env) is enabled


def test_rescore_job_writes_rows_and_records_each_student_in_the_ui(sqlite_url, clock):
    now = clock.now  # the job's clock too (frozen): nothing moves between seeding and the run
    version = seed_scoring(sqlite_url, now)
    with dg.instance_for_test() as instance:
        result = student_rescore_job.execute_in_process(
            run_config={"ops": {"rescore_students": {"config": {"user_ids": ["1", "2", "3"]}}}},
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
    assert rows["user_id"].to_list() == ["1", "2"] and set(rows["source"]) == {"online"}
    assert set(rows["fitted_at"]) == {now}


def test_rescore_job_with_only_noop_students_succeeds(sqlite_url, clock):
    seed_scoring(sqlite_url, clock.now)
    with dg.instance_for_test() as instance:
        result = student_rescore_job.execute_in_process(
            run_config={"ops": {"rescore_students": {"config": {"user_ids": ["3", "4"]}}}},
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
        )
        assert result.success
        assert instance.get_materialized_partitions(STUDENT_ABILITY) == set()
    assert stored_rows(sqlite_url).height == 0


def test_a_rescore_uses_the_weekly_populations_prior(sqlite_url):
    # A re-score estimates what the weekly batch estimates: the same growth model, with the
    # prior the batch's empirical Bayes found for the population (its stored moments).
    version = seed_scoring(sqlite_url, NOW)
    week = datetime.fromisoformat(version.split("@")[1]).date()
    thetas, growths = [0.4, 0.8, 1.2], [0.02, 0.05, 0.08]
    weekly = pl.DataFrame(
        {
            "user_id": ["11", "12", "13"],
            "week_start": [week] * 3,
            "theta": thetas,
            "se": [0.3] * 3,
            "model": ["2PL"] * 3,
            "version": [version] * 3,
            "source": ["weekly"] * 3,
            "n_responses": [40] * 3,
            "fitted_at": [NOW - timedelta(days=2)] * 3,
            "growth": growths,
            "growth_se": [0.02] * 3,
            "growth_cov": [0.0] * 3,
        }
    )
    engine = make_engine(sqlite_url)
    with transaction(engine) as conn:
        insert_frame(conn, s.mirt_ability, weekly)
    prior = population_prior(engine, week)
    assert prior.level_mean == pytest.approx(0.8)
    assert prior.level_sd == pytest.approx(np.sqrt(np.var(thetas) + 0.3**2))
    assert prior.growth_mean == pytest.approx(0.05)
    assert prior.growth_sd == pytest.approx(np.sqrt(np.var(growths) + 0.02**2))
    one = update_theta(engine, ["1"], now=NOW).results[0]
    engine.dispose()
    day, minute = -1 / 7, 1 / (7 * 24 * 60)
    expected, _ = growth_by_hand(
        [(100, True, day), (101, False, day + minute)],
        (prior.level_mean, prior.level_sd, prior.growth_mean, prior.growth_sd),
    )
    assert one.theta == pytest.approx(expected, abs=1e-5)
    assert abs(one.theta - growth_by_hand([(100, True, day), (101, False, day + minute)])[0]) > 0.1
