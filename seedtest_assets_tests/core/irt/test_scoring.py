"""Scoring: hand-checkable cases, edge cases, the adaptive grid and the one-user fast path."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.optimize import brentq, minimize_scalar
from scipy.special import expit

from seedtest_assets.core.irt import ItemBank, score, simulate
from seedtest_assets.core.irt.simulate import simulate_items

# Two known items: (a, b, c). P = c + (1 - c) expit(a (theta - b)).
TWO_ITEMS = pl.DataFrame({"item_id": [11, 22], "a": [1.3, 0.8], "b": [-0.4, 0.9], "c": [0.0, 0.0]})


def _p(theta, a, b, c=0.0):
    return c + (1 - c) * expit(a * (theta - b))


def _frame(user, items, correct) -> pl.DataFrame:
    return pl.DataFrame({"user_id": [user] * len(items), "item_id": items, "is_correct": correct})


def test_eap_matches_direct_integration():
    responses = _frame(1, [11, 22], [True, False])
    got = score(responses, TWO_ITEMS).row(0, named=True)
    x = np.linspace(-10, 10, 20_001)
    density = np.exp(-0.5 * x**2) * _p(x, 1.3, -0.4) * (1 - _p(x, 0.8, 0.9))
    norm = np.trapezoid(density, x)
    mean = np.trapezoid(x * density, x) / norm
    sd = np.sqrt(np.trapezoid((x - mean) ** 2 * density, x) / norm)
    assert got["theta"] == pytest.approx(mean, abs=1e-6)
    assert got["se"] == pytest.approx(sd, abs=1e-6)
    assert got["n_responses"] == 2


def test_ml_matches_root_of_score_equation():
    responses = _frame(1, [11, 22], [True, False])
    got = score(responses, TWO_ITEMS, method="ML").row(0, named=True)

    def score_eq(t):  # d log L / d theta for the 2PL: sum a (y - P)
        return 1.3 * (1 - _p(t, 1.3, -0.4)) + 0.8 * (0 - _p(t, 0.8, 0.9))

    root = brentq(score_eq, -5, 5, xtol=1e-12)
    info = sum(a * a * _p(root, a, b) * (1 - _p(root, a, b)) for a, b in [(1.3, -0.4), (0.8, 0.9)])
    assert got["theta"] == pytest.approx(root, abs=1e-7)
    assert got["se"] == pytest.approx(1 / np.sqrt(info), rel=1e-7)


def test_map_matches_numerical_mode_3pl():
    items = TWO_ITEMS.with_columns(pl.Series("c", [0.2, 0.25]))
    responses = _frame(1, [11, 22], [True, True])
    got = score(responses, items, method="MAP").row(0, named=True)

    def neg_log_post(t):
        return -(np.log(_p(t, 1.3, -0.4, 0.2)) + np.log(_p(t, 0.8, 0.9, 0.25)) - 0.5 * t * t)

    mode = minimize_scalar(
        neg_log_post, bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}
    ).x
    h = 1e-4
    curvature = (neg_log_post(mode + h) - 2 * neg_log_post(mode) + neg_log_post(mode - h)) / h**2
    assert got["theta"] == pytest.approx(mode, abs=1e-6)
    assert got["se"] == pytest.approx(1 / np.sqrt(curvature), rel=1e-4)


def test_perfect_patterns_and_edge_users():
    responses = pl.concat(
        [
            _frame(1, [11, 22], [True, True]),  # all correct
            _frame(2, [11, 22], [False, False]),  # all wrong
            _frame(3, [22], [True]),  # one response
            _frame(4, [11, 99, 98], [False, True, True]),  # two unseen items
            _frame(5, [99], [True]),  # nothing usable
        ]
    )
    eap = {r["user_id"]: r for r in score(responses, TWO_ITEMS).iter_rows(named=True)}
    ml = {r["user_id"]: r for r in score(responses, TWO_ITEMS, "ML").iter_rows(named=True)}
    mp = {r["user_id"]: r for r in score(responses, TWO_ITEMS, "MAP").iter_rows(named=True)}
    assert 0 < eap[1]["theta"] < 3 and 0 < eap[1]["se"] < 1
    assert -3 < eap[2]["theta"] < 0
    assert ml[1]["theta"] == np.inf and ml[1]["se"] == np.inf
    assert ml[2]["theta"] == -np.inf and ml[2]["se"] == np.inf
    assert np.isfinite(mp[1]["theta"]) and mp[1]["theta"] > 0
    assert ml[3]["theta"] == np.inf  # one correct response: a perfect pattern
    assert eap[3]["n_responses"] == 1 and np.isfinite(eap[3]["theta"])
    # unseen items are ignored, not a crash, and counted
    assert (eap[4]["n_responses"], eap[4]["n_ignored"]) == (1, 2)
    alone = score(_frame(4, [11], [False]), TWO_ITEMS).row(0, named=True)
    assert eap[4]["theta"] == pytest.approx(alone["theta"], abs=1e-12)
    # no usable response: the prior (EAP/MAP), undefined for ML
    assert (eap[5]["theta"], eap[5]["se"], eap[5]["n_responses"]) == (0.0, 1.0, 0)
    assert (mp[5]["theta"], mp[5]["se"]) == (0.0, 1.0)
    assert np.isnan(ml[5]["theta"]) and ml[5]["se"] == np.inf


def test_bad_scoring_input():
    with pytest.raises(ValueError, match="method"):
        score(_frame(1, [11], [True]), TWO_ITEMS, method="WLE")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        ItemBank(TWO_ITEMS).score_one([11], [True], "WLE")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        score(_frame(1, [11], [True]).clear(), TWO_ITEMS)


@pytest.mark.parametrize("method", ["EAP", "MAP", "ML"])
def test_method_names_are_case_insensitive(method):
    responses = _frame(1, [11, 22], [True, False])
    upper = score(responses, TWO_ITEMS, method=method)
    assert upper.equals(score(responses, TWO_ITEMS, method=method.lower()))  # type: ignore[arg-type]
    bank = ItemBank(TWO_ITEMS)
    one = bank.score_one([11, 22], [1, 0], method)
    assert one == bank.score_one([11, 22], [1, 0], method.lower())  # type: ignore[arg-type]
    assert one.theta == pytest.approx(upper["theta"][0], abs=1e-9)


def test_long_history_uses_a_fine_enough_grid():
    items = simulate_items(1_000, "2PL", seed=41)
    rng = np.random.default_rng(42)
    theta = 0.7
    p = expit(items["a"].to_numpy() * theta + items["d"].to_numpy())
    responses = pl.DataFrame(
        {"user_id": 1, "item_id": items["item_id"], "is_correct": rng.random(1_000) < p}
    )
    reference = score(responses, items, quadrature_points=2001).row(0, named=True)
    adaptive = score(responses, items).row(0, named=True)
    coarse = score(responses, items, quadrature_points=61).row(0, named=True)
    assert adaptive["theta"] == pytest.approx(reference["theta"], abs=1e-3)
    assert adaptive["se"] == pytest.approx(reference["se"], abs=1e-3)
    # the reason for the adaptive grid: mirt's 61-point calibration grid is off here
    assert abs(coarse["theta"] - reference["theta"]) > 5e-3
    one = ItemBank(items).score_one(responses["item_id"], responses["is_correct"])
    assert one.theta == pytest.approx(reference["theta"], abs=1e-3)


def test_score_one_matches_batch(sim_2pl, cal_2pl):
    """``score_one`` gives the batch's numbers (its speed is measured by benchmarks/irt.py)."""
    responses = sim_2pl[0]
    bank = ItemBank(cal_2pl.items)
    batch = score(responses, bank)
    for method in ("EAP", "MAP", "ML"):
        batch = score(responses, bank, method=method)
        for user in batch["user_id"][:5]:
            mine = responses.filter(pl.col("user_id") == user)
            one = bank.score_one(mine["item_id"].to_numpy(), mine["is_correct"].to_numpy(), method)
            row = batch.filter(pl.col("user_id") == user).row(0, named=True)
            assert one.theta == pytest.approx(row["theta"], abs=1e-9)
            assert one.se == pytest.approx(row["se"], abs=1e-9)


def test_scoring_is_independent_of_id_values(cal_2pl, sim_2pl):
    responses = sim_2pl[0].filter(pl.col("user_id") < 1_000_050)
    first = score(responses, cal_2pl.items)
    shuffled = score(
        responses.sample(fraction=1.0, shuffle=True, seed=3).with_columns(
            pl.col("user_id") * 3 + 5
        ),
        cal_2pl.items,
    )
    np.testing.assert_allclose(first["theta"], shuffled["theta"], atol=1e-12)


def test_simulate_shapes():
    responses, items, thetas = simulate(100, 30, 10, seed=1)
    assert responses.height == 1_000
    assert responses.group_by("user_id", "item_id").len()["len"].max() == 1  # distinct items
    assert set(items.columns) == {"item_id", "a", "b", "c", "d"}
    assert thetas.height == 100


def test_a_kept_bank_reuses_its_finer_grid_and_answers_the_same():
    """The θ-update service scores one student at a time with one bank: the finer grid's
    table is built once (rounded up to a multiple of 64, +1) and the answers do not move."""
    items = simulate_items(1_000, "2PL", seed=43)
    rng = np.random.default_rng(44)
    p = expit(items["a"].to_numpy() * 0.3 + items["d"].to_numpy())
    responses = pl.DataFrame(
        {"user_id": 1, "item_id": items["item_id"], "is_correct": rng.random(1_000) < p}
    )
    bank = ItemBank(items)
    first = score(responses, bank).row(0, named=True)
    (points,) = bank._fine
    assert (points - 1) % ItemBank.FINE_STEP == 0 and points > bank.nodes.size
    table = bank._fine[points][1]
    again = score(responses, bank).row(0, named=True)
    assert bank._fine[points][1] is table  # reused, not rebuilt
    assert again == first
    reference = score(responses, items, quadrature_points=2001).row(0, named=True)
    assert first["theta"] == pytest.approx(reference["theta"], abs=1e-4)
    for n in range(ItemBank.FINE_TABLES + 3):  # the cache stays bounded
        bank.fine_table(200 + 64 * n)
    assert len(bank._fine) == ItemBank.FINE_TABLES
