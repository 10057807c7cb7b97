"""The EM (em.py): monotone objective, convergence and the cycle limit, the E-step's counts and
an M-step that leaves anchored items alone."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seedtest_assets.core.irt import calibrate, simulate
from seedtest_assets.core.irt.data import response_arrays, sparse_counts
from seedtest_assets.core.irt.em import e_step, m_step, marginal_log_likelihood
from seedtest_assets.core.irt.models import MODELS, ItemPriors
from seedtest_assets.core.irt.quadrature import grid, log_normal_weights


def test_log_likelihood_never_decreases_and_converges(cal_2pl):
    ll = np.asarray(cal_2pl.log_likelihood_trace)
    lp = np.asarray(cal_2pl.log_posterior_trace)
    assert cal_2pl.converged
    assert 3 < cal_2pl.iterations < 200
    assert len(ll) == cal_2pl.iterations + 1
    assert ll[-1] == pytest.approx(cal_2pl.log_likelihood)
    assert np.all(np.diff(lp) >= -1e-9 * abs(lp[0]))  # the EM objective
    assert np.all(np.diff(ll) >= -1e-9 * abs(ll[0]))  # and the likelihood itself
    assert ll[-1] > ll[0] + 100  # it actually climbed


def test_max_cycles_stops_unconverged(sim_2pl):
    cal = calibrate(sim_2pl[0], max_cycles=2)
    assert not cal.converged
    assert cal.iterations == 2
    assert len(cal.log_likelihood_trace) == 3
    assert np.all(np.diff(cal.log_likelihood_trace) > 0)


@pytest.mark.parametrize("model", ["Rasch", "1PL", "3PL"])
def test_objective_never_decreases_for_every_model(model):
    responses, _, _ = simulate(600, 30, 15, model="3PL" if model == "3PL" else "Rasch", seed=6)
    cal = calibrate(responses, model, max_cycles=25)
    lp = np.asarray(cal.log_posterior_trace)
    assert np.all(np.diff(lp) >= -1e-9 * abs(lp[0]))


def _counts(seed: int = 2):
    responses, truth, _ = simulate(400, 25, 12, seed=seed)
    data = response_arrays(responses)
    counts = sparse_counts(
        data.users, data.items, data.correct, data.user_ids.size, data.item_ids.size
    )
    return counts, truth, data


def test_e_step_counts_add_up():
    counts, truth, data = _counts()
    a, d, c = truth["a"].to_numpy(), truth["d"].to_numpy(), truth["c"].to_numpy()
    nodes = grid(31)
    w = log_normal_weights(nodes)
    step = e_step(counts, a, d, c, nodes, w)
    # every response is spread over the nodes: totals per item = observed counts
    np.testing.assert_allclose(step.nn.sum(axis=1), np.bincount(data.items), rtol=1e-12)
    np.testing.assert_allclose(
        step.r1.sum(axis=1), np.bincount(data.items, weights=data.correct), rtol=1e-12
    )
    assert step.mass.sum() == pytest.approx(data.user_ids.size, rel=1e-12)
    assert step.log_likelihood == marginal_log_likelihood(counts, a, d, c, nodes, w)


def test_m_step_moves_only_free_items_and_raises_the_objective():
    counts, truth, _ = _counts(3)
    n = truth.height
    model, priors = MODELS["2PL"], ItemPriors()
    a, d, c = np.ones(n), np.zeros(n), np.zeros(n)
    nodes = grid(31)
    step = e_step(counts, a, d, c, nodes, log_normal_weights(nodes))
    free = np.arange(n) % 2 == 0
    a2, d2, c2 = m_step(a, d, c, step.r1, step.nn, nodes, free, model, priors)
    np.testing.assert_array_equal(a2[~free], a[~free])
    np.testing.assert_array_equal(d2[~free], d[~free])
    assert not np.array_equal(d2[free], d[free])
    before = model.objective(a, d, c, step.r1, step.nn, nodes, priors)
    after = model.objective(a2, d2, c2, step.r1, step.nn, nodes, priors)
    assert np.all(after >= before)


# --------------------------------------------------------------------------- acceleration
def _params(cal) -> np.ndarray:
    items = cal.items.sort("item_id")
    return np.concatenate([items[c].to_numpy() for c in ("a", "d", "c")])


@pytest.fixture(scope="module")
def sparse_2pl():
    """Little information per student (4 answers each, 50 items), so plain EM is slow
    (71 cycles; 23 on the 40-answer fixture): the case acceleration is for."""
    return simulate(2_000, 50, 4, model="2PL", seed=21)


@pytest.fixture(scope="module")
def reference(sparse_2pl):
    """Plain EM run far past the usual tolerance: the solution itself."""
    return calibrate(sparse_2pl[0], tol=1e-8, max_cycles=5_000)


def test_squarem_reaches_the_plain_solution_in_fewer_cycles(sparse_2pl, reference):
    plain = calibrate(sparse_2pl[0])
    fast = calibrate(sparse_2pl[0], accelerate="squarem")
    assert reference.converged and plain.converged and fast.converged
    # Same estimates and log-likelihood (the bar: 1e-3 and 0.01) ...
    assert np.max(np.abs(_params(fast) - _params(reference))) < 1e-3
    assert abs(fast.log_likelihood - reference.log_likelihood) < 0.01
    # ... no farther from the solution than plain EM stopping at the same tolerance ...
    assert np.max(np.abs(_params(fast) - _params(reference))) <= np.max(
        np.abs(_params(plain) - _params(reference))
    )
    # ... in at most half the E-steps, with an objective that never went down.
    assert fast.iterations <= plain.iterations / 2, (fast.iterations, plain.iterations)
    lp = np.asarray(fast.log_posterior_trace)
    assert np.all(np.diff(lp) >= -1e-9 * abs(lp[0]))


@pytest.mark.parametrize("model", ["Rasch", "1PL", "3PL"])
def test_squarem_agrees_for_every_model(model):
    truth = "3PL" if model == "3PL" else "Rasch"
    responses, _, _ = simulate(1_500, 60, 20, model=truth, seed=8)
    ref = calibrate(responses, model, tol=1e-8, max_cycles=5_000)
    fast = calibrate(responses, model, accelerate="squarem")
    assert fast.converged
    assert np.max(np.abs(_params(fast) - _params(ref))) < 1e-3
    assert abs(fast.log_likelihood - ref.log_likelihood) < 0.01
    lp = np.asarray(fast.log_posterior_trace)
    assert np.all(np.diff(lp) >= -1e-9 * abs(lp[0]))
    if model == "Rasch":
        assert (fast.items["a"] == 1.0).all()


def test_a_warm_start_on_another_scale_gives_the_same_solution_sooner(sparse_2pl, reference):
    # Last week's parameters on the linked scale: this population has mean 0.6, SD 1.3
    # there (theta_linked = 0.6 + 1.3 theta), so a = a_ref / 1.3 and b = 0.6 + 1.3 b_ref.
    start = reference.items.select("item_id", a=pl.col("a") / 1.3, b=0.6 + 1.3 * pl.col("b"))
    cold = calibrate(sparse_2pl[0], accelerate="squarem")
    warm = calibrate(sparse_2pl[0], accelerate="squarem", start_items=start)
    assert warm.converged
    assert np.max(np.abs(_params(warm) - _params(reference))) < 1e-3
    assert warm.iterations < cold.iterations, (warm.iterations, cold.iterations)
    # Items the start does not know start cold; start rows without responses are ignored.
    partial = start.head(25).vstack(
        pl.DataFrame({"item_id": ["nobody-saw-me"], "a": [1.0], "b": [0.0]}, schema=start.schema)
        if start.schema["item_id"] == pl.String
        else pl.DataFrame({"item_id": [10**9], "a": [1.0], "b": [0.0]}, schema=start.schema)
    )
    half = calibrate(sparse_2pl[0], accelerate="squarem", start_items=partial)
    assert half.converged and half.items.height == reference.items.height
    assert np.max(np.abs(_params(half) - _params(reference))) < 1e-3


def test_squarem_keeps_the_cycle_limit_and_refuses_unknown_names(sim_2pl):
    cal = calibrate(sim_2pl[0], accelerate="squarem", max_cycles=3)
    assert not cal.converged and cal.iterations <= 3
    with pytest.raises(ValueError, match="accelerate"):
        calibrate(sim_2pl[0], accelerate="ramsay", max_cycles=1)  # type: ignore[arg-type]
