"""The item models (models.py): response function at known points, each model's priors,
parameter layout and starting values, derivatives against finite differences, the
slope-intercept <-> a/b/c round trip, and the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seedtest_assets.core.irt.models import (
    MODELS,
    NO_PRIORS,
    D,
    GuessPrior,
    InterceptPrior,
    ItemModel,
    ItemPriors,
    SlopePrior,
    find_model,
    get_model,
    log_prob_tables,
    max_information,
    prob,
)
from seedtest_assets.core.options import IrtModel, allowed

# -- the response function -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "d", "c", "theta", "want"),
    [
        (1.0, 0.0, 0.0, 0.0, 0.5),  # theta = b: one half
        (1.0, 0.0, 0.0, 1.0, 1 / (1 + math.exp(-1))),
        (1.5, -0.75, 0.0, 0.5, 0.5),  # b = -d / a = 0.5
        (1.5, -0.75, 0.2, 0.5, 0.6),  # 3PL at theta = b: c + (1 - c) / 2
        (1.0, math.log(3.0), 0.25, 0.0, 0.8125),  # expit(log 3) = 3/4: .25 + .75 * .75
        (2.0, 1.0, 0.1, -100.0, 0.1),  # far below: the lower asymptote
    ],
)
def test_prob_at_known_points(a, d, c, theta, want):
    got = prob(np.array(a), np.array(d), np.array(c), np.array(theta))
    assert float(got) == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_log_prob_tables_match_prob_and_stay_finite_for_extreme_items():
    a = np.array([1.0, 0.7, 2.0, 40.0])
    d = np.array([0.0, -0.3, 1.0, 0.0])
    c = np.array([0.0, 0.2, 0.05, 0.0])
    nodes = np.linspace(-6, 6, 13)
    log_p, log_q = log_prob_tables(a, d, c, nodes)
    p = prob(a[:, None], d[:, None], c[:, None], nodes[None, :])
    np.testing.assert_allclose(np.exp(log_p[:3]), p[:3], rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_q[:3]), 1 - p[:3], rtol=1e-10)
    # a = 40 at theta = -6: z = -240, P underflows to 0 but log P is finite (about -240)
    assert np.isfinite(log_p[3]).all() and log_p[3, 0] == pytest.approx(-240.0)


def test_max_information_is_the_2pl_peak():
    # 2PL information a^2 P (1 - P) peaks at P = 1/2
    assert float(max_information(np.array(1.4))) == pytest.approx(1.4**2 / 4)


# -- one model at a time --------------------------------------------------------------------


def _kinds(model: ItemModel, priors: ItemPriors) -> list[type]:
    return [type(t) for t in model.prior_terms(priors)]


def test_rasch_fixes_the_slope_and_has_only_an_intercept_prior():
    m = MODELS["Rasch"]
    assert m.item_params == (D,) and m.unit_slope and not m.shared_slope and not m.guessing
    assert _kinds(m, ItemPriors()) == [InterceptPrior]
    # hand-computed: intercept prior N(0, 5^2) at d = 5 -> -0.5
    assert m.log_prior(np.array([3.0]), np.array([5.0]), np.array([0.0]), ItemPriors()) == -0.5


def test_1pl_shares_one_slope_without_a_slope_prior():
    m = MODELS["1PL"]
    assert m.item_params == (D,) and m.shared_slope and not m.unit_slope
    assert _kinds(m, ItemPriors()) == [InterceptPrior]
    assert m.log_prior(np.array([3.0]), np.array([5.0]), np.array([0.0]), ItemPriors()) == -0.5


def test_2pl_has_slope_and_intercept_priors():
    m = MODELS["2PL"]
    assert m.item_params == (0, 1) and not m.shared_slope and not m.guessing
    assert _kinds(m, ItemPriors()) == [SlopePrior, InterceptPrior]
    # N(1, 2^2) at a = 3: -0.5; N(0, 5^2) at d = 5: -0.5
    assert m.log_prior(np.array([3.0]), np.array([5.0]), np.array([0.0]), ItemPriors()) == -1.0
    assert _kinds(m, NO_PRIORS) == []


def test_3pl_adds_a_beta_prior_on_guessing():
    m = MODELS["3PL"]
    assert m.item_params == (0, 1, 2) and m.guessing
    assert _kinds(m, ItemPriors()) == [SlopePrior, InterceptPrior, GuessPrior]
    assert _kinds(m, ItemPriors(guess=None)) == [SlopePrior, InterceptPrior]
    got = m.log_prior(np.array([3.0]), np.array([5.0]), np.array([0.2]), ItemPriors())
    assert got == pytest.approx(-1.0 + 4 * math.log(0.2) + 16 * math.log(0.8), rel=1e-14)


def test_start_values():
    p_hat = np.array([0.5, 0.8])
    for name in ("Rasch", "1PL", "2PL"):
        a, d, c = MODELS[name].start_values(p_hat, ItemPriors())
        np.testing.assert_array_equal(a, 1.0)
        np.testing.assert_array_equal(c, 0.0)
        np.testing.assert_allclose(d, 1.2 * np.log(p_hat / (1 - p_hat)))
    # 3PL: c at the prior's mode, Beta(4, 10) -> 3 / 12; d from the proportion above c
    a, d, c = MODELS["3PL"].start_values(p_hat, ItemPriors(guess=(4.0, 10.0)))
    np.testing.assert_allclose(c, 0.25)
    above = (p_hat - 0.25) / 0.75
    np.testing.assert_allclose(d, 1.2 * np.log(above / (1 - above)))
    _, _, c0 = MODELS["3PL"].start_values(p_hat, ItemPriors(guess=None))
    np.testing.assert_allclose(c0, 0.2)
    assert GuessPrior(1.0, 1.0).mode() == 0.2  # flat Beta: no mode, the default


def _expected_counts(seed: int, k: int, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    nn = rng.uniform(0.0, 20.0, size=(k, nodes.size))
    r1 = nn * rng.uniform(0.1, 0.9, size=(k, nodes.size))
    return r1, nn


def _params(name: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    a = np.ones(k) if name in ("Rasch", "1PL") else rng.uniform(0.5, 2.0, k)
    d = rng.normal(0.0, 1.0, k)
    c = rng.uniform(0.1, 0.3, k) if name == "3PL" else np.zeros(k)
    return a, d, c


@pytest.mark.parametrize("name", list(MODELS))
def test_gradient_matches_finite_differences(name):
    model, priors = MODELS[name], ItemPriors()
    nodes = np.linspace(-4, 4, 17)
    r1, nn = _expected_counts(2, 5, nodes)
    a, d, c = _params(name, 5)
    grad, _ = model.gradient_information(a, d, c, r1, nn, nodes, priors)
    h = 1e-6

    def f(da: float = 0.0, dd: float = 0.0, dlc: float = 0.0) -> np.ndarray:
        lc = np.log(c / (1 - c)) + dlc if model.guessing else None
        cc = 1 / (1 + np.exp(-lc)) if lc is not None else c
        return model.objective(a + da, d + dd, cc, r1, nn, nodes, priors)

    np.testing.assert_allclose(grad[:, 0], (f(da=h) - f(da=-h)) / (2 * h), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad[:, 1], (f(dd=h) - f(dd=-h)) / (2 * h), rtol=1e-6, atol=1e-6)
    if model.guessing:
        np.testing.assert_allclose(
            grad[:, 2], (f(dlc=h) - f(dlc=-h)) / (2 * h), rtol=1e-6, atol=1e-6
        )


def test_2pl_information_is_the_negative_hessian():
    # logit link: for the complete-data Bernoulli likelihood the Fisher information in (a, d)
    # equals the observed one, so it must match the Hessian of the objective.
    model, priors = MODELS["2PL"], ItemPriors()
    nodes = np.linspace(-4, 4, 17)
    r1, nn = _expected_counts(3, 4, nodes)
    a, d, c = _params("2PL", 4)
    _, info = model.gradient_information(a, d, c, r1, nn, nodes, priors)
    h = 1e-4

    def g(da: float, dd: float) -> np.ndarray:
        grad, _ = model.gradient_information(a + da, d + dd, c, r1, nn, nodes, priors)
        return grad[:, :2]

    hess_a = (g(h, 0) - g(-h, 0)) / (2 * h)
    hess_d = (g(0, h) - g(0, -h)) / (2 * h)
    np.testing.assert_allclose(-hess_a, info[:, 0, :2], rtol=1e-6)
    np.testing.assert_allclose(-hess_d, info[:, 1, :2], rtol=1e-6)


# -- conversions and the registry -----------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_parameters_round_trip_slope_intercept_and_abc(name):
    model = MODELS[name]
    a, d, c = _params(name, 50)
    a2, b, c2 = model.to_irt(a, d, c)
    np.testing.assert_allclose(b, -d / a, rtol=1e-15)
    back = model.from_irt(a2, b, c2)
    for got, want in zip(back, (a, d, c), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # the same probabilities in both forms: c + (1 - c) expit(a (theta - b))
    theta = np.linspace(-3, 3, 7)[:, None]
    irt_form = c + (1 - c) / (1 + np.exp(-a * (theta - b)))
    np.testing.assert_allclose(model.prob(a, d, c, theta), irt_form, rtol=1e-12)
    # and a/b/c -> slope-intercept -> a/b/c
    a3, d3, c3 = model.from_irt(a, b, c)
    np.testing.assert_allclose(model.to_irt(a3, d3, c3)[1], b, rtol=1e-12, atol=1e-15)


def test_registry_has_every_irt_model_once():
    assert set(MODELS) == set(allowed(IrtModel))
    for name, model in MODELS.items():
        assert model.name == name
        assert get_model(name) is model
        assert get_model(name.lower()) is model
        assert find_model(name.upper()) is model
    assert find_model("4PL") is None
    with pytest.raises(ValueError, match="model must be one of"):
        get_model("4PL")
