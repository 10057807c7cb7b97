"""Bock-Aitkin EM for item parameters: E-step, M-step driver (Fisher scoring) and convergence.

The data never becomes a dense person x item matrix: responses are sparse count matrices
(:class:`~.data.SparseResponses`, users x 2 items). Each cycle:

E-step
    per-user log-likelihood at every node: one sparse product with the per-item table
    ``[log(1 - P), log P]`` (2 n_items, Q), posterior weights per user, and the expected
    counts per item and node ``r = R1^T @ W``, ``n = N^T @ W`` through the transposed product;
    in blocks of users on two threads, so W (n_users x Q) is never held whole.
M-step
    Fisher scoring on the parameters the item model estimates per item (``item_params``:
    a, d and, for 3PL, logit c) for all items at once (batched 1x1 to 3x3 solves), at most
    ``NEWTON_STEPS`` steps per cycle, steps scaled down to at most ``MAX_STEP`` and halved
    until the item's objective does not decrease; then a block step on a shared slope (1PL).
    So the EM objective, log-likelihood + log-prior, never decreases.

Stops when no parameter (a, d, and c on the probability scale; plus the population mean and
SD when estimated) moves more than ``tol`` between cycles, or after ``max_cycles``.

Everything model-specific (which parameters, which priors, the likelihood's derivatives) comes
from the :class:`~.models.ItemModel` object; nothing here looks at a model's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, logit

from seedtest_assets.core.irt.data import SparseResponses, interleave
from seedtest_assets.core.irt.models import A, D, ItemModel, ItemPriors, log_prob_tables
from seedtest_assets.core.irt.quadrature import log_normal_weights

NEWTON_STEPS = 3
#: Largest Newton step per parameter (a, d, logit c) in one M-step iteration.
MAX_STEP = 1.0
HALVINGS = 12
#: Guessing is estimated as logit(c) and clipped to this range (c in [2.5e-7, 0.9997]).
LOGIT_C_BOUNDS = (-15.0, 8.0)


@dataclass
class EStep:
    """One E-step: marginal log-likelihood (nats) and the expected counts.

    - ``r1``, ``nn``: expected correct and total responses per item and node, float64
      (n_items, Q).
    - ``mass``: posterior mass per node, float64 (Q,), sums to n_users.
    """

    log_likelihood: float
    r1: np.ndarray
    nn: np.ndarray
    mass: np.ndarray


def marginal_log_likelihood(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    nodes: np.ndarray,
    log_prior_w: np.ndarray,
) -> float:
    """Marginal log-likelihood (nats, quadrature approximation) of the responses ``counts``
    at item parameters a, d, c (n_items,) on ``nodes`` (Q,) with log prior weights (Q,)."""
    log_p, log_q = log_prob_tables(a, d, c, nodes)
    ll, _, _ = counts.posterior(interleave(log_q, log_p), log_prior_w, expected=False)
    return ll


def e_step(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    nodes: np.ndarray,
    log_prior_w: np.ndarray,
) -> EStep:
    """The E-step at item parameters a, d, c (n_items,): see :class:`EStep`. Blocked over
    users (:meth:`~.data.SparseResponses.posterior`)."""
    log_p, log_q = log_prob_tables(a, d, c, nodes)
    ll, both, mass = counts.posterior(interleave(log_q, log_p), log_prior_w, expected=True)
    assert both is not None and mass is not None  # expected=True returns them
    right = both[1::2]
    return EStep(ll, right, right + both[0::2], mass)


@dataclass
class EmResult:
    """Item parameters a, d, c (float64 (n_items,)) at the end of EM, with the fit.

    ``log_likelihood_trace`` / ``log_posterior_trace``: values at the start of every cycle,
    then at the solution (length ``iterations + 1``); ``population_mean`` / ``_sd``: theta's
    distribution (0 and 1 unless estimated).
    """

    a: np.ndarray
    d: np.ndarray
    c: np.ndarray
    log_likelihood: float
    log_posterior: float
    converged: bool
    iterations: int
    log_likelihood_trace: list[float] = field(default_factory=list)
    log_posterior_trace: list[float] = field(default_factory=list)
    population_mean: float = 0.0
    population_sd: float = 1.0


def run_em(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    free: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
    nodes: np.ndarray,
    *,
    estimate_population: bool,
    max_cycles: int,
    tol: float,
) -> EmResult:
    """Bock-Aitkin EM from starting values a, d, c (float64 (n_items,)); only items with
    ``free`` (bool (n_items,)) True move. ``nodes`` (Q,): the theta grid (logits).

    ``estimate_population``: also estimate theta's mean and SD (else N(0, 1)).
    ``max_cycles`` >= 1; ``tol``: convergence threshold on the largest parameter change.
    """
    n_users = counts.counts.shape[0]
    mean, sd = 0.0, 1.0
    log_prior_w = log_normal_weights(nodes, mean, sd)
    ll_trace: list[float] = []
    lp_trace: list[float] = []
    converged = False
    cycles = 0
    for cycle in range(1, max_cycles + 1):
        cycles = cycle
        step = e_step(counts, a, d, c, nodes, log_prior_w)
        ll_trace.append(step.log_likelihood)
        lp_trace.append(step.log_likelihood + model.log_prior(a[free], d[free], c[free], priors))
        old = (a.copy(), d.copy(), c.copy(), mean, sd)
        a, d, c = m_step(a, d, c, step.r1, step.nn, nodes, free, model, priors)
        if estimate_population:
            # Population moments from the posterior weights: the exact M-step for a normal
            # latent distribution (up to its discretization on the grid).
            mean = float(step.mass @ nodes / n_users)
            sd = float(np.sqrt(step.mass @ (nodes - mean) ** 2 / n_users))
            log_prior_w = log_normal_weights(nodes, mean, sd)
        change = max(
            np.max(np.abs(a - old[0]), initial=0.0),
            np.max(np.abs(d - old[1]), initial=0.0),
            np.max(np.abs(c - old[2]), initial=0.0),
            abs(mean - old[3]),
            abs(sd - old[4]),
        )
        del step  # the (n_items, Q) expected counts are not needed past the M-step
        if change < tol:
            converged = True
            break
    ll = marginal_log_likelihood(counts, a, d, c, nodes, log_prior_w)
    lp = ll + model.log_prior(a[free], d[free], c[free], priors)
    ll_trace.append(ll)
    lp_trace.append(lp)
    return EmResult(
        a=a,
        d=d,
        c=c,
        log_likelihood=ll,
        log_posterior=lp,
        converged=converged,
        iterations=cycles,
        log_likelihood_trace=ll_trace,
        log_posterior_trace=lp_trace,
        population_mean=mean,
        population_sd=sd,
    )


def m_step(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    r1: np.ndarray,
    nn: np.ndarray,
    nodes: np.ndarray,
    free: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fisher-scoring steps with step halving for the free items; returns new (a, d, c)
    (float64 (n_items,) each; fixed items unchanged). r1, nn: expected counts (n_items, Q)."""
    a, d, c = a.copy(), d.copy(), c.copy()
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return a, d, c
    params = list(model.item_params)
    r1f, nnf = r1[idx], nn[idx]
    af, df, cf = a[idx], d[idx], c[idx]
    for _ in range(NEWTON_STEPS):
        value = model.objective(af, df, cf, r1f, nnf, nodes, priors)
        grad, info = model.gradient_information(af, df, cf, r1f, nnf, nodes, priors)
        g = grad[:, params]
        h = info[:, params][:, :, params]
        # Tiny ridge: keeps the solve defined for items with (nearly) no information.
        h = h + 1e-8 * np.eye(len(params))
        step = np.linalg.solve(h, g[:, :, None])[:, :, 0]
        scale = np.minimum(1.0, MAX_STEP / np.maximum(np.max(np.abs(step), axis=1), 1e-300))
        step *= scale[:, None]
        af, df, cf, moved = _line_search(
            af, df, cf, step, params, value, r1f, nnf, nodes, model, priors
        )
        if moved < 1e-10:
            break
    if model.shared_slope:
        af = _shared_slope(af, df, cf, r1f, nnf, nodes, model, priors)
    a[idx], d[idx], c[idx] = af, df, cf
    return a, d, c


def _apply(
    a: np.ndarray, d: np.ndarray, c: np.ndarray, step: np.ndarray, params: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, d, c) moved by ``step`` (k, len(params)), column j moving parameter params[j];
    logit c is clipped to ``LOGIT_C_BOUNDS`` so c stays inside (0, 1)."""
    a2, d2, c2 = a.copy(), d.copy(), c.copy()
    for col, which in enumerate(params):
        if which == A:
            a2 = a + step[:, col]
        elif which == D:
            d2 = d + step[:, col]
        else:
            lg = np.clip(logit(c) + step[:, col], *LOGIT_C_BOUNDS)
            c2 = expit(lg)
    return a2, d2, c2


def _line_search(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    step: np.ndarray,
    params: list[int],
    value: np.ndarray,
    r1: np.ndarray,
    nn: np.ndarray,
    nodes: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Take ``step`` where it does not lower the item's objective, else halve it (per item);
    items with no improving step keep their parameters. Returns (a, d, c, largest move)."""
    pending = np.ones(a.size, dtype=bool)
    new_a, new_d, new_c = a.copy(), d.copy(), c.copy()
    step = step.copy()
    for _ in range(HALVINGS):
        rows = np.flatnonzero(pending)
        if rows.size == 0:
            break
        ta, td, tc = _apply(a[rows], d[rows], c[rows], step[rows], params)
        tv = model.objective(ta, td, tc, r1[rows], nn[rows], nodes, priors)
        ok = tv >= value[rows]
        acc = rows[ok]
        new_a[acc], new_d[acc], new_c[acc] = ta[ok], td[ok], tc[ok]
        pending[acc] = False
        step[rows[~ok]] *= 0.5
    moved = max(
        np.max(np.abs(new_a - a), initial=0.0),
        np.max(np.abs(new_d - d), initial=0.0),
        np.max(np.abs(new_c - c), initial=0.0),
    )
    return new_a, new_d, new_c, float(moved)


def _shared_slope(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    r1: np.ndarray,
    nn: np.ndarray,
    nodes: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
) -> np.ndarray:
    """Newton steps on the slope shared by all free items (1PL): the gradient and information
    of one common slope are the sums of the items' slope gradients and informations."""
    slope = float(a[0])
    total = float(np.sum(model.objective(a, d, c, r1, nn, nodes, priors)))
    for _ in range(NEWTON_STEPS):
        grad, info = model.gradient_information(a, d, c, r1, nn, nodes, priors)
        step = float(np.sum(grad[:, A]) / max(np.sum(info[:, A, A]), 1e-12))
        step = float(np.clip(step, -MAX_STEP, MAX_STEP))
        for _ in range(HALVINGS):
            trial = np.full_like(a, slope + step)
            value = float(np.sum(model.objective(trial, d, c, r1, nn, nodes, priors)))
            if value >= total:
                slope, total, a = slope + step, value, trial
                break
            step *= 0.5
        else:
            break
        if abs(step) < 1e-10:
            break
    return a


__all__ = [
    "EStep",
    "EmResult",
    "e_step",
    "m_step",
    "marginal_log_likelihood",
    "run_em",
]
