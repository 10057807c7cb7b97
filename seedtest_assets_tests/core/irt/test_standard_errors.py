"""Item standard errors (``calibrate(..., standard_errors=True)``): R mirt's published LSAT7
values, coverage of 95% intervals over simulated replications with known parameters, and
the two methods against each other where they must agree."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import seedtest_assets.core.irt.standard_errors as se_mod
from seedtest_assets.core.irt import calibrate
from seedtest_assets.core.irt.simulate import simulate_items, simulate_responses
from seedtest_assets_tests.core.irt.lsat import (
    LSAT6_PATTERNS,
    MIRT_2PL,
    MIRT_2PL_CI_RICHARDSON,
    MIRT_2PL_CI_SEM,
    MIRT_2PL_LOGLIK,
    MIRT_LSAT6_RASCH_D,
    MIRT_LSAT6_RASCH_VARIANCE,
    ci_to_se,
    lsat7_responses,
    responses_of,
)

Z95 = 1.959963984540054


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the item-block method whatever the parameter count."""
    monkeypatch.setattr(se_mod, "FULL_MAX_PARAMS", 0)


def test_lsat7_2pl_matches_mirt() -> None:
    cal = calibrate(lsat7_responses(), "2PL", priors=None, standard_errors=True, tol=1e-6)
    items = cal.items.sort("item_id")
    assert cal.se_method == se_mod.FULL and cal.se_positive_definite
    assert cal.log_likelihood == pytest.approx(MIRT_2PL_LOGLIK, abs=0.01)
    np.testing.assert_allclose(items["a"], [a for a, _ in MIRT_2PL], atol=2e-3)
    np.testing.assert_allclose(items["d"], [d for _, d in MIRT_2PL], atol=2e-3)
    # mirt's numerical observed information ('Richardson'), as its 95% intervals; they are
    # printed to 4 decimals, so each SE is known to about 3e-5.
    a_se = [ci_to_se(lo, hi) for lo, hi, _, _ in MIRT_2PL_CI_RICHARDSON]
    d_se = [ci_to_se(lo, hi) for _, _, lo, hi in MIRT_2PL_CI_RICHARDSON]
    np.testing.assert_allclose(items["a_se"], a_se, rtol=5e-3)
    np.testing.assert_allclose(items["d_se"], d_se, rtol=5e-3)
    # Supplemented EM (mirt 'SEM') estimates the same quantity less precisely: mirt's own
    # test compares its intervals at tolerance 1e-2 (mean relative difference).
    sem = np.array([[ci_to_se(r[0], r[1]), ci_to_se(r[2], r[3])] for r in MIRT_2PL_CI_SEM])
    ours = items.select("a_se", "d_se").to_numpy()
    assert np.mean(np.abs(ours - sem)) / np.mean(sem) < 0.03


def test_lsat7_item_blocks_are_close_but_smaller() -> None:
    """Five items and 1,000 students: the blocks between items matter most here, and leaving
    them out understates the SEs (the other items' uncertainty is ignored), by < 10%."""
    full = calibrate(lsat7_responses(), "2PL", priors=None, standard_errors=True, tol=1e-6)
    se_mod_max = se_mod.FULL_MAX_PARAMS
    try:
        se_mod.FULL_MAX_PARAMS = 0
        block = calibrate(lsat7_responses(), "2PL", priors=None, standard_errors=True, tol=1e-6)
    finally:
        se_mod.FULL_MAX_PARAMS = se_mod_max
    assert block.se_method == se_mod.BLOCKS
    for col in ("a_se", "d_se"):
        ratio = (block.items[col] / full.items[col]).to_numpy()
        assert np.all(ratio < 1.0) and np.all(ratio > 0.9), (col, ratio)


def _coverage(n_items: int, n_users: int, per_user: int, reps: int, model: str = "2PL"):
    """Share of 95% intervals covering the true a, b, d over ``reps`` replications of one
    set of true items (fresh students and responses each time); and the methods used."""
    items = simulate_items(n_items, model, seed=3)
    hits: dict[str, list[np.ndarray]] = {"a": [], "b": [], "d": []}
    methods = set()
    for r in range(reps):
        rng = np.random.default_rng(100 + r)
        thetas = pl.DataFrame({"user_id": np.arange(n_users), "theta": rng.normal(0, 1, n_users)})
        responses = simulate_responses(items, thetas, per_user, seed=1000 + r)
        cal = calibrate(
            responses, model, priors=None, standard_errors=True, accelerate="squarem", tol=1e-6
        )
        methods.add(cal.se_method)
        est = cal.items.join(items.select("item_id", ta="a", tb="b", td="d"), on="item_id")
        for p in hits:
            z = ((est[p] - est[f"t{p}"]) / est[f"{p}_se"]).to_numpy()
            hits[p].append(np.abs(z) < Z95)
    return {p: float(np.concatenate(h).mean()) for p, h in hits.items()}, methods


def test_full_intervals_cover_the_truth_95_percent() -> None:
    """10 items, 1,000 students, 60 replications: 600 intervals per parameter (the coverage
    estimate's SD is 0.009)."""
    cover, methods = _coverage(10, 1000, 10, 60)
    assert methods == {se_mod.FULL}
    for p, share in cover.items():
        assert 0.92 <= share <= 0.98, (p, share)


@pytest.mark.usefixtures("blocks")
def test_item_block_intervals_cover_the_truth_95_percent() -> None:
    """Sparse: 40 items, each student answers 20 of them (as in the product, students see
    different items), 40 replications: 1,600 intervals per parameter (SD 0.0054)."""
    cover, methods = _coverage(40, 1000, 20, 40)
    assert methods == {se_mod.BLOCKS}
    for p, share in cover.items():
        assert 0.93 <= share <= 0.97, (p, share)


def test_blocks_equal_full_for_one_item_with_repeated_attempts() -> None:
    """With one item there are no blocks between items, so both methods compute the same
    observed information; each student answers it 3 times (repeated attempts), which the
    block method must not count as independent students."""
    rng = np.random.default_rng(7)
    n = 3000
    theta = rng.normal(0, 1, n)
    a, d = 1.4, 0.3
    p = 1 / (1 + np.exp(-(a * theta + d)))
    users = np.repeat(np.arange(n), 3)
    correct = rng.random(3 * n) < np.repeat(p, 3)
    responses = pl.DataFrame({"user_id": users, "item_id": 1, "is_correct": correct})
    full = calibrate(responses, "2PL", priors=None, standard_errors=True, tol=1e-7)
    saved = se_mod.FULL_MAX_PARAMS
    try:
        se_mod.FULL_MAX_PARAMS = 0
        block = calibrate(responses, "2PL", priors=None, standard_errors=True, tol=1e-7)
    finally:
        se_mod.FULL_MAX_PARAMS = saved
    for col in ("a_se", "d_se", "b_se"):
        assert block.items[col][0] == pytest.approx(full.items[col][0], rel=1e-4), col


def test_models_anchors_and_priors() -> None:
    responses = simulate_responses(
        simulate_items(8, "3PL", seed=5),
        pl.DataFrame(
            {"user_id": np.arange(3000), "theta": np.random.default_rng(1).normal(size=3000)}
        ),
        8,
        seed=2,
    )
    three = calibrate(responses, "3PL", standard_errors=True)
    assert three.se_positive_definite
    items = three.items
    assert items.select((pl.col("c_se") > 0) & (pl.col("a_se") > 0)).to_series().all()
    rasch = calibrate(responses, "Rasch", standard_errors=True)
    assert (rasch.items["a_se"] == 0).all() and (rasch.items["d_se"] > 0).all()
    assert rasch.items["c_se"].is_nan().all()
    one = calibrate(responses, "1PL", standard_errors=True)
    # One shared slope: one SE for it, the same on every row.
    assert one.items["a_se"].n_unique() == 1 and one.items["a_se"][0] > 0
    saved = se_mod.FULL_MAX_PARAMS
    try:
        se_mod.FULL_MAX_PARAMS = 0
        one_blocks = calibrate(responses, "1PL", standard_errors=True)
    finally:
        se_mod.FULL_MAX_PARAMS = saved
    ratio = one_blocks.items["d_se"] / one.items["d_se"]
    assert ((ratio > 0.85) & (ratio <= 1.0 + 1e-9)).all()
    # Anchored items are not estimated: no SE; the others still get one.
    two = calibrate(responses, "2PL", standard_errors=True)
    anchors = two.items.head(3).select("item_id", "a", "d")
    anchored = calibrate(responses, "2PL", fixed_items=anchors, standard_errors=True)
    fixed = anchored.items.filter(pl.col("fixed"))
    assert fixed.height == 3 and fixed["a_se"].is_nan().all()
    assert (anchored.items.filter(~pl.col("fixed"))["a_se"] > 0).all()
    # The default priors add curvature: MAP SEs are never larger than ML SEs.
    ml = calibrate(responses, "2PL", priors=None, standard_errors=True)
    assert (two.items["a_se"] <= ml.items["a_se"] + 1e-12).all()


def test_off_by_default() -> None:
    cal = calibrate(lsat7_responses(), "2PL")
    assert cal.se_method is None and "a_se" not in cal.items.columns


def _all_equal(target: np.ndarray, current: np.ndarray) -> float:
    """R's ``all.equal`` difference (what mirt's ``expect_equal(tolerance=)`` compares):
    mean absolute difference over mean absolute target."""
    return float(np.mean(np.abs(target - current)) / np.mean(np.abs(target)))


def test_lsat6_rasch_matches_mirt_estimates_and_intervals() -> None:
    """mirt's Rasch with a free latent variance is our 1PL (a = sqrt(variance)); mirt's
    test compares estimates and 95% intervals at tolerance 1e-2."""
    cal = calibrate(
        responses_of(LSAT6_PATTERNS), "1PL", priors=None, standard_errors=True, tol=1e-7
    )
    items = cal.items.sort("item_id")
    d, d_se = items["d"].to_numpy(), items["d_se"].to_numpy()
    ours = np.column_stack([d, d - Z95 * d_se, d + Z95 * d_se])
    assert _all_equal(np.array(MIRT_LSAT6_RASCH_D), ours) < 1e-2
    a, a_se = items["a"][0], items["a_se"][0]
    var, var_se = a * a, 2 * a * a_se  # delta method for the variance
    ours_var = np.array([var, var - Z95 * var_se, var + Z95 * var_se])
    assert _all_equal(np.array(MIRT_LSAT6_RASCH_VARIANCE), ours_var) < 1e-2
    np.testing.assert_allclose(d, [t[0] for t in MIRT_LSAT6_RASCH_D], atol=2e-3)


def test_lsat7_intervals_pass_mirts_own_comparison() -> None:
    cal = calibrate(lsat7_responses(), "2PL", priors=None, standard_errors=True, tol=1e-6)
    it = cal.items.sort("item_id")
    for published in (MIRT_2PL_CI_RICHARDSON, MIRT_2PL_CI_SEM):
        ours = np.column_stack(
            [
                it["a"] - Z95 * it["a_se"],
                it["a"] + Z95 * it["a_se"],
                it["d"] - Z95 * it["d_se"],
                it["d"] + Z95 * it["d_se"],
            ]
        )
        assert _all_equal(np.array(published), ours) < 1e-2
