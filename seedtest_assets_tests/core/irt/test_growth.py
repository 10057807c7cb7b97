"""Growth model: recovery of known levels and slopes, hand-computed modes, calibrated SEs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from seedtest_assets.core.irt.growth import GrowthPrior, score_growth
from seedtest_assets.core.irt.models import prob
from seedtest_assets.core.irt.simulate import simulate_items

ONE_ITEM = pl.DataFrame({"item_id": [7], "a": [1.0], "b": [0.0], "c": [0.0]})


def _responses(user: int, ts: list[float], correct: list[bool], item: int = 7) -> pl.DataFrame:
    n = len(ts)
    return pl.DataFrame(
        {"user_id": [user] * n, "item_id": [item] * n, "is_correct": correct, "t": ts}
    )


def test_half_right_at_time_zero_gives_level_zero_and_prior_growth():
    # 10 of 20 right on a b = 0, a = 1 item, all at t = 0: the mode is level 0 exactly, the
    # slope has no information (t = 0), so it stays at the prior with the prior's SD.
    prior = GrowthPrior(0.0, 1.0, 0.03, 0.1)
    got = score_growth(
        _responses(1, [0.0] * 20, [True, False] * 10), ONE_ITEM, prior=prior, empirical_bayes=False
    ).estimates.row(0, named=True)
    assert got["theta"] == pytest.approx(0.0, abs=1e-9)
    # Information 20 * 0.25 + prior precision 1.
    assert got["theta_se"] == pytest.approx(1 / np.sqrt(6.0), rel=1e-9)
    assert got["growth"] == pytest.approx(0.03, abs=1e-12)
    assert got["growth_se"] == pytest.approx(0.1, rel=1e-9)
    assert got["cov"] == pytest.approx(0.0, abs=1e-12)


def test_mode_matches_direct_optimisation():
    rng = np.random.default_rng(3)
    ts = list(-rng.uniform(0, 8, 60))
    correct = list(rng.random(60) < expit(0.4 + 0.1 * np.array(ts)))
    prior = GrowthPrior(0.2, 0.8, 0.05, 0.07)
    got = score_growth(
        _responses(5, ts, correct), ONE_ITEM, prior=prior, empirical_bayes=False
    ).estimates.row(0, named=True)

    t, y = np.array(ts), np.array(correct, dtype=float)

    def neg_log_post(x):
        z = x[0] + x[1] * t
        ll = np.sum(np.where(y == 1, log_expit(z), log_expit(-z)))
        return -(ll - 0.5 * ((x[0] - 0.2) / 0.8) ** 2 - 0.5 * ((x[1] - 0.05) / 0.07) ** 2)

    best = minimize(neg_log_post, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    assert got["theta"] == pytest.approx(best[0], abs=1e-6)
    assert got["growth"] == pytest.approx(best[1], abs=1e-6)
    # Laplace covariance: inverse of the Hessian of the negative log-posterior (2PL: expected
    # = observed information).
    p = expit(best[0] + best[1] * t)
    w = p * (1 - p)
    h = np.array(
        [[w.sum() + 1 / 0.8**2, (w * t).sum()], [(w * t).sum(), (w * t * t).sum() + 1 / 0.07**2]]
    )
    cov = np.linalg.inv(h)
    assert got["theta_se"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-6)
    assert got["growth_se"] == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-6)
    assert got["cov"] == pytest.approx(cov[0, 1], rel=1e-6)


@pytest.fixture(scope="module")
def growing_population():
    """4,000 students, 150 responses each spread over 12 weeks, known level and growth."""
    rng = np.random.default_rng(21)
    items = simulate_items(300, "3PL", seed=21)
    n, k = 4_000, 150
    level = rng.normal(0.0, 1.0, n)
    growth = rng.normal(0.05, 0.04, n)
    u = np.repeat(np.arange(n), k)
    t = -rng.uniform(0.0, 12.0, n * k)
    it = rng.integers(0, items.height, n * k)
    p = prob(
        items["a"].to_numpy()[it],
        items["d"].to_numpy()[it],
        items["c"].to_numpy()[it],
        level[u] + growth[u] * t,
    )
    responses = pl.DataFrame(
        {
            "user_id": 100 + u,
            "item_id": items["item_id"].to_numpy()[it],
            "is_correct": rng.random(n * k) < p,
            "t": t,
        }
    )
    return responses, items, level, growth


def test_recovers_level_and_growth_with_calibrated_uncertainty(growing_population):
    responses, items, level, growth = growing_population
    fit = score_growth(responses, items)
    est = fit.estimates.sort("user_id")
    assert est.height == level.size
    lv, gr = est["theta"].to_numpy(), est["growth"].to_numpy()
    assert np.corrcoef(lv, level)[0, 1] > 0.93
    assert np.corrcoef(gr, growth)[0, 1] > 0.45
    # Empirical Bayes finds the population's growth distribution N(0.05, 0.04^2).
    assert fit.prior.growth_mean == pytest.approx(0.05, abs=0.01)
    assert fit.prior.growth_sd == pytest.approx(0.04, abs=0.015)
    # The SEs say how far off the estimates are: z-scores have SD ~ 1.
    z_g = (gr - growth) / est["growth_se"].to_numpy()
    z_l = (lv - level) / est["theta_se"].to_numpy()
    assert 0.85 < z_g.std() < 1.15
    assert 0.85 < z_l.std() < 1.15
    # ~95% of the true slopes inside the +-1.96 SE intervals.
    assert 0.92 < np.mean(np.abs(z_g) < 1.96) < 0.98


def test_shrinkage_beats_no_pooling_for_data_poor_students(growing_population):
    responses, items, _, growth = growing_population
    few = responses.filter(pl.int_range(pl.len()).over("user_id") < 20)
    pooled = score_growth(few, items).estimates["growth"].to_numpy()
    flat = (
        score_growth(few, items, prior=GrowthPrior(growth_sd=10.0), empirical_bayes=False)
        .estimates["growth"]
        .to_numpy()
    )
    assert np.mean((pooled - growth) ** 2) < 0.5 * np.mean((flat - growth) ** 2)


def test_unknown_items_ignored_and_missing_time_rejected():
    r = pl.concat(
        [_responses(1, [0.0, -1.0], [True, False]), _responses(1, [-2.0], [True], item=999)]
    )
    est = score_growth(r, ONE_ITEM, empirical_bayes=False).estimates
    assert est["n_responses"].to_list() == [2]
    with pytest.raises(ValueError, match="'t'"):
        score_growth(r.drop("t"), ONE_ITEM)
