"""The KPI core on hand-computed cases (no warehouse, no Dagster)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.special import expit
from scipy.stats import norm

from seedtest_assets.core.weekly_kpi.compute import (
    ABILITY_SCHEMA,
    ACTIVITY_SCHEMA,
    CHURN_FEATURES,
    DEFAULT_CHURN_MODEL,
    GOALS_SCHEMA,
    KPI_SCHEMA,
    KpiSettings,
    activity_window,
    churn_training_set,
    compute_weekly_kpi,
    fit_churn_model,
    goal_probability,
    kpi_rows,
)

WEEK = date(2026, 11, 9)  # a Monday
AS_OF = WEEK + timedelta(days=7)


def _activity(rows: list[tuple[int, date, int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["user_id", "date", "attempts", "correct", "study_ms"], orient="row"
    ).cast(ACTIVITY_SCHEMA)


def test_activity_window_counts_days_per_block_and_recency():
    act = _activity(
        [
            (1, AS_OF - timedelta(days=1), 10, 7, 600_000),  # Sunday: block 0, recency 0
            (1, AS_OF - timedelta(days=7), 5, 5, 300_000),  # Monday of the week: block 0
            (1, AS_OF - timedelta(days=8), 4, 1, 60_000),  # previous Sunday: block 1
            (2, AS_OF - timedelta(days=20), 3, 2, 90_000),  # block 2, 19 days ago
            (3, AS_OF - timedelta(days=29), 3, 2, 90_000),  # outside the 4 weeks
            (4, AS_OF, 3, 2, 90_000),  # the as-of day itself: not yet
        ]
    )
    got = activity_window(act, AS_OF).sort("user_id")
    assert got["user_id"].to_list() == ["1", "2"]
    one, two = got.row(0, named=True), got.row(1, named=True)
    assert (one["d0"], one["d1"], one["d2"], one["d3"]) == (2, 1, 0, 0)
    assert one["days_since_last"] == 0 and one["attempts"] == 19 and one["study_ms"] == 960_000
    assert (two["d0"], two["d1"], two["d2"], two["days_since_last"]) == (0, 0, 1, 19)
    assert two["log_attempts"] == pytest.approx(math.log1p(3))


def test_goal_probability_hand_cases():
    one = np.array([1.0])
    # Goal date at the end of the week (h = 0): P = Phi((theta - goal) / se).
    p = goal_probability(
        np.array([0.5]), np.array([0.2]), np.array([0.1]), np.array([0.05]), np.array([0.0]),
        np.array([0.0]), np.array([0.8]),
    )  # fmt: skip
    assert p[0] == pytest.approx(norm.cdf((0.5 - 0.8) / 0.2))
    # 4 weeks ahead: mean 0.5 + 0.4, var 0.04 + 16 * 0.0025 + 2 * 4 * 0.001.
    p = goal_probability(
        np.array([0.5]), np.array([0.2]), np.array([0.1]), np.array([0.05]), np.array([0.001]),
        4 * one, np.array([0.8]),
    )  # fmt: skip
    assert p[0] == pytest.approx(norm.cdf((0.9 - 0.8) / math.sqrt(0.04 + 0.04 + 0.008)))
    # Absent for 1 week: only 3 weeks of growth left to count.
    p_abs = goal_probability(
        np.array([0.5]), np.array([0.2]), np.array([0.1]), np.array([0.05]), np.array([0.001]),
        4 * one, np.array([0.8]), weeks_absent=one,
    )  # fmt: skip
    assert p_abs[0] == pytest.approx(norm.cdf((0.8 - 0.8) / math.sqrt(0.04 + 0.0225 + 0.006)))
    # NaN (no goal) stays NaN.
    assert np.isnan(goal_probability(*(np.array([np.nan]),) * 7)[0])


def test_fit_churn_model_recovers_a_known_logistic_model():
    rng = np.random.default_rng(5)
    n = 20_000
    raw = np.column_stack(
        [rng.integers(0, 8, n) for _ in range(4)]
        + [rng.integers(0, 28, n), rng.normal(3.5, 1.0, n)]
    ).astype(float)
    frame = pl.DataFrame(raw, schema=list(CHURN_FEATURES), orient="row")
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    truth = np.array([-1.0, -0.6, -0.3, -0.1, 0.0, 0.8, -0.4])
    z = np.column_stack([np.ones(n), (raw - mean) / scale]) @ truth
    y = (rng.random(n) < expit(z)).astype(float)
    model = fit_churn_model(frame, y)
    assert model.source == "fitted" and model.n_train == n
    assert np.allclose(model.coef, truth, atol=0.08)
    assert model.base_rate == pytest.approx(y.mean())
    # Too few examples of one class: the cold-start model.
    assert fit_churn_model(frame.head(60), np.r_[np.ones(10), np.zeros(50)]) is DEFAULT_CHURN_MODEL


def test_training_labels_are_the_observed_future():
    settings = KpiSettings(training_weeks=1)
    past = AS_OF - timedelta(days=settings.horizon_days)
    act = _activity(
        [
            (1, past - timedelta(days=1), 5, 3, 1),
            (1, past + timedelta(days=3), 5, 3, 1),  # came back within the horizon
            (2, past - timedelta(days=2), 5, 3, 1),  # never came back
            (3, past - timedelta(days=2), 5, 3, 1),
            (3, past + timedelta(days=14), 5, 3, 1),  # came back just after the horizon
        ]
    )
    x, y = churn_training_set(act, AS_OF, settings)
    assert x.height == 3
    assert y.tolist() == [0.0, 1.0, 1.0]  # rows in user order


def _ability(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ABILITY_SCHEMA)


def test_compute_weekly_kpi_hand_example():
    act = _activity(
        [
            # Student 1: 2 days this week, 60 + 30 min; 1 day a week before, 30 min.
            (1, WEEK + timedelta(days=1), 20, 15, 3_600_000),
            (1, WEEK + timedelta(days=3), 10, 6, 1_800_000),
            (1, WEEK - timedelta(days=4), 10, 5, 1_800_000),
            # Student 2: only 3 weeks ago (drifting away), 6 minutes.
            (2, WEEK - timedelta(days=15), 4, 1, 360_000),
        ]
    )
    abilities = _ability(
        [
            {"user_id": "1", "week_start": WEEK, "theta": 0.4, "se": 0.25,
             "growth": 0.06, "growth_se": 0.03, "growth_cov": 0.002},
            {"user_id": "2", "week_start": WEEK, "theta": -0.5, "se": 0.4,
             "growth": None, "growth_se": None, "growth_cov": None},
        ]
    )  # fmt: skip
    goals = pl.DataFrame(
        {"user_id": ["1"], "goal_theta": [1.0], "goal_date": [AS_OF + timedelta(weeks=8)]},
        schema=GOALS_SCHEMA,
    )
    res = compute_weekly_kpi(act, abilities, goals, week_start=WEEK, as_of=AS_OF)
    k = res.kpis
    assert k.schema == pl.Schema(KPI_SCHEMA)
    assert res.churn_model is DEFAULT_CHURN_MODEL  # 2 students: nothing to fit on
    one, two = k.row(0, named=True), k.row(1, named=True)
    assert (one["I_t"], one["I_t_se"], one["trend_per_week"]) == (0.06, 0.03, 0.06)
    # 2 hours in 4 weeks = 0.5 h/week -> 0.12 logits per study hour.
    assert one["study_hours_per_week"] == pytest.approx(0.5)
    assert one["E_t"] == pytest.approx(0.12) and one["E_t_se"] == pytest.approx(0.06)
    assert (one["active_days"], one["attempts"], one["correct"]) == (2, 30, 21)
    assert one["accuracy"] == pytest.approx(0.7) and one["study_minutes"] == pytest.approx(90)
    # theta is mirt_ability.theta itself; theta_prev the same line a week earlier.
    assert (one["theta"], one["se"]) == (0.4, 0.25)
    assert one["theta_prev"] == pytest.approx(0.34)
    assert one["weeks_to_goal"] == pytest.approx(8.0) and one["goal_date"] == "2027-01-11"
    # Last visit Thursday: 3 days absent = 4/7 week without growth.
    k_eff = 8.0 - 4 / 7
    mean, var = 0.4 + 0.06 * k_eff, 0.25**2 + k_eff**2 * 0.03**2 + 2 * k_eff * 0.002
    assert one["P"] == pytest.approx(norm.cdf((mean - 1.0) / math.sqrt(var)))
    assert one["days_since_last"] == 3 and one["active_days_4w"] == 3
    assert 0 < one["S"] < two["S"] < 1  # absent 2 weeks and barely active: riskier
    # Student 2: no growth, no goal, too little study for E_t; theta still shown.
    assert two["I_t"] is None and two["E_t"] is None and two["P"] is None
    assert (two["theta"], two["se"]) == (-0.5, 0.4)
    assert two["active_this_week"] is False and two["active_days"] == 0


def test_in_progress_week_and_bounds():
    act = _activity([(1, WEEK + timedelta(days=1), 5, 4, 60_000)])
    empty = pl.DataFrame(schema=ABILITY_SCHEMA)
    no_goals = pl.DataFrame(schema=GOALS_SCHEMA)
    mid = compute_weekly_kpi(
        act, empty, no_goals, week_start=WEEK, as_of=WEEK + timedelta(days=2),
    ).kpis  # fmt: skip
    assert mid["active_days"].to_list() == [1] and mid["days_since_last"].to_list() == [0]
    with pytest.raises(ValueError, match="within the week"):
        compute_weekly_kpi(act, empty, no_goals, week_start=WEEK, as_of=WEEK + timedelta(days=8))


def test_kpi_rows_are_json_with_nulls_for_non_finite():
    k = pl.DataFrame(
        {
            "week_start": [WEEK, WEEK],
            "user_id": [1, 2],
            "I_t": [0.05, float("nan")],
            "P": [0.5, None],
            "S": [float("inf"), 0.2],
        }
    )
    k = k.with_columns(
        pl.lit(None, dtype=t).alias(c)
        for c, t in KPI_SCHEMA.items()
        if c not in k.columns
    ).select(list(KPI_SCHEMA)).cast(KPI_SCHEMA)  # fmt: skip
    rows = kpi_rows(k, datetime(2026, 11, 16, 2, 10))
    first, second = (json.loads(v) for v in rows["kpis"])
    assert first["I_t"] == 0.05 and first["P"] == 0.5 and first["S"] is None
    assert second["I_t"] is None and second["S"] == 0.2
    assert set(first) == set(KPI_SCHEMA) - {"week_start", "user_id"}
