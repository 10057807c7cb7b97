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
from seedtest_assets.core.irt.models import (
    LOGIT_C,
    A,
    D,
    ItemModel,
    ItemPriors,
    log_prob_tables,
)
from seedtest_assets.core.irt.quadrature import log_normal_weights
from seedtest_assets.core.options import Acceleration

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
    #: The E-step at the solution (expected counts included), when asked for: what Louis'
    #: item blocks need, so the SEs do not pass over the responses once more for it.
    final_step: EStep | None = None


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
    accelerate: Acceleration = "none",
    final_step: bool = False,
) -> EmResult:
    """Bock-Aitkin EM from starting values a, d, c (float64 (n_items,)); only items with
    ``free`` (bool (n_items,)) True move. ``nodes`` (Q,): the theta grid (logits).

    ``estimate_population``: also estimate theta's mean and SD (else N(0, 1)).
    ``max_cycles`` >= 1: the limit on E-steps (each costs one pass over the responses);
    ``tol``: convergence threshold on the largest change one plain EM cycle makes.
    ``accelerate``: ``"squarem"`` extrapolates from two EM cycles (:func:`_squarem`; the
    objective still never decreases), ``"none"`` runs plain cycles.
    ``final_step``: keep the E-step at the solution (:attr:`EmResult.final_step`; it costs
    the expected counts on top of the final log-likelihood's pass).
    """
    em = _Cycle(counts, free, model, priors, nodes, estimate_population)
    start = _State(a, d, c, 0.0, 1.0)
    if accelerate == "squarem":
        state, converged = _squarem(em, start, max_cycles, tol)
    elif accelerate == "none":
        state, converged = _plain(em, start, max_cycles, tol)
    else:
        raise ValueError(f"accelerate must be 'none' or 'squarem', got {accelerate!r}")
    a, d, c = state.a, state.d, state.c
    log_prior_w = log_normal_weights(nodes, state.mean, state.sd)
    last = e_step(counts, a, d, c, nodes, log_prior_w) if final_step else None
    ll = (
        last.log_likelihood
        if last is not None
        else marginal_log_likelihood(counts, a, d, c, nodes, log_prior_w)
    )
    lp = ll + model.log_prior(a[free], d[free], c[free], priors)
    em.ll_trace.append(ll)
    em.lp_trace.append(lp)
    return EmResult(
        a=a,
        d=d,
        c=c,
        log_likelihood=ll,
        log_posterior=lp,
        converged=converged,
        iterations=em.e_steps,
        log_likelihood_trace=em.ll_trace,
        log_posterior_trace=em.lp_trace,
        population_mean=state.mean,
        population_sd=state.sd,
        final_step=last,
    )


@dataclass(frozen=True)
class _State:
    """Where the EM is: item parameters (n_items,) and theta's mean and SD."""

    a: np.ndarray
    d: np.ndarray
    c: np.ndarray
    mean: float
    sd: float

    def change(self, other: _State) -> float:
        """The largest absolute difference of any parameter (c on the probability scale)."""
        return max(
            np.max(np.abs(self.a - other.a), initial=0.0),
            np.max(np.abs(self.d - other.d), initial=0.0),
            np.max(np.abs(self.c - other.c), initial=0.0),
            abs(self.mean - other.mean),
            abs(self.sd - other.sd),
        )


class _Cycle:
    """One EM cycle as a map of states (the fixed-point map SQUAREM accelerates), counting its
    E-steps and recording the objective of every state it was evaluated at."""

    def __init__(
        self,
        counts: SparseResponses,
        free: np.ndarray,
        model: ItemModel,
        priors: ItemPriors,
        nodes: np.ndarray,
        estimate_population: bool,
    ) -> None:
        self.counts, self.free, self.model, self.priors = counts, free, model, priors
        self.nodes, self.estimate_population = nodes, estimate_population
        self.n_users = counts.counts.shape[0]
        self.e_steps = 0
        self.ll_trace: list[float] = []
        self.lp_trace: list[float] = []
        # Which parameters move, for packing a state into one vector (SQUAREM).
        self.moves_a = A in model.item_params or model.shared_slope
        self.moves_c = LOGIT_C in model.item_params

    def evaluate(self, x: _State) -> tuple[EStep, float]:
        """The E-step at ``x`` and the EM objective there (log-likelihood + log-prior)."""
        self.e_steps += 1
        w = log_normal_weights(self.nodes, x.mean, x.sd)
        step = e_step(self.counts, x.a, x.d, x.c, self.nodes, w)
        f = self.free
        lp = step.log_likelihood + self.model.log_prior(x.a[f], x.d[f], x.c[f], self.priors)
        return step, lp

    def record(self, step: EStep, lp: float) -> None:
        self.ll_trace.append(step.log_likelihood)
        self.lp_trace.append(lp)

    def cycle(self, x: _State) -> tuple[_State, float]:
        """One plain, recorded EM cycle from ``x``: the next state and the objective at ``x``."""
        step, lp = self.evaluate(x)
        self.record(step, lp)
        return self.update(x, step), lp

    def update(self, x: _State, step: EStep) -> _State:
        """The M-step from ``x`` given its E-step: the next state."""
        a, d, c = m_step(
            x.a, x.d, x.c, step.r1, step.nn, self.nodes, self.free, self.model, self.priors
        )
        mean, sd = x.mean, x.sd
        if self.estimate_population:
            # Population moments from the posterior weights: the exact M-step for a normal
            # latent distribution (up to its discretization on the grid).
            mean = float(step.mass @ self.nodes / self.n_users)
            sd = float(np.sqrt(step.mass @ (self.nodes - mean) ** 2 / self.n_users))
        return _State(a, d, c, mean, sd)

    def pack(self, x: _State) -> np.ndarray:
        """The moving parameters as one vector: a, d, logit c of the free items, mean, log SD."""
        f = self.free
        parts = [x.d[f]]
        if self.moves_a:
            parts.append(x.a[f])
        if self.moves_c:
            parts.append(logit(x.c[f]))
        if self.estimate_population:
            parts.append(np.array([x.mean, np.log(x.sd)]))
        return np.concatenate(parts)

    def unpack(self, v: np.ndarray, like: _State) -> _State:
        """:meth:`pack`'s inverse (fixed items and unmoved parameters from ``like``)."""
        f = self.free
        k = int(f.sum())
        a, d, c = like.a.copy(), like.d.copy(), like.c.copy()
        d[f], at = v[:k], k
        if self.moves_a:
            a[f], at = v[at : at + k], at + k
        if self.moves_c:
            c[f], at = expit(np.clip(v[at : at + k], *LOGIT_C_BOUNDS)), at + k
        mean, sd = like.mean, like.sd
        if self.estimate_population:
            mean, sd = float(v[at]), float(np.exp(v[at + 1]))
        return _State(a, d, c, mean, sd)


def _plain(em: _Cycle, x: _State, max_cycles: int, tol: float) -> tuple[_State, bool]:
    """Plain EM cycles until one moves no parameter more than ``tol``."""
    for _ in range(max_cycles):
        new, _ = em.cycle(x)
        if new.change(x) < tol:
            return new, True
        x = new
    return x, False


#: SQUAREM's largest extrapolation starts at 1 (a plain double cycle) and grows by this
#: factor each time a step uses all of it (Varadhan & Roland 2008, the SQUAREM package).
SQUAREM_STEP_FACTOR = 4.0


def _squarem(em: _Cycle, x0: _State, max_cycles: int, tol: float) -> tuple[_State, bool]:
    """SQUAREM (Varadhan & Roland 2008, scheme S3) on the EM map, with the monotone guard.

    From x0 two cycles give x1 and x2; with r = x1 - x0 and v = x2 - 2 x1 + x0 the
    extrapolated point is x' = x0 + 2 s r + s^2 v, s = |r| / |v| clamped to [1, s_max]
    (s = 1 is x2 exactly). x' is kept only when its objective is at least x1's, and is then
    followed by one plain cycle (the stabilization); otherwise the step falls back to x2 (the
    rejected point's E-step is the only cost). So the objective at the states the EM passes
    through never decreases, as in plain EM. Converged when a plain
    cycle moves no parameter more than ``tol``, the stopping rule of plain EM.
    """
    step_max = 1.0
    while em.e_steps < max_cycles:
        x1, _ = em.cycle(x0)
        if x1.change(x0) < tol:
            return x1, True
        if em.e_steps >= max_cycles:
            return x1, False
        x2, lp1 = em.cycle(x1)
        if x2.change(x1) < tol:
            return x2, True
        p0, p1, p2 = em.pack(x0), em.pack(x1), em.pack(x2)
        r, v = p1 - p0, p2 - 2 * p1 + p0
        nv = float(np.linalg.norm(v))
        s = float(np.clip(np.linalg.norm(r) / nv, 1.0, step_max)) if nv > 0 else 1.0
        if s == step_max:
            step_max *= SQUAREM_STEP_FACTOR
        if s <= 1.0 or em.e_steps >= max_cycles:
            x0 = x2
            continue
        xp = em.unpack(p0 + 2 * s * r + s * s * v, x0)
        sp, lpp = em.evaluate(xp)
        if np.isfinite(lpp) and lpp >= lp1:
            em.record(sp, lpp)
            xn = em.update(xp, sp)
            del sp
            if xn.change(xp) < tol:
                return xn, True
            x0 = xn
        else:  # overshot: take the plain double cycle and extrapolate less boldly
            del sp
            step_max = max(1.0, step_max / SQUAREM_STEP_FACTOR)
            x0 = x2
    return x0, False


def align_scale(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    nodes: np.ndarray,
    *,
    slopes_move: bool = True,
    steps: int = 2,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Start values (a, d: float64 (n_items,)) re-expressed on the scale where these
    responses' population is N(0, 1), the scale a calibration without anchors estimates on.

    Warm starts come from last week's parameters on the linked scale, where this window's
    students have some mean m and SD s: each step takes the moments of the posterior mass
    under N(0, 1) and maps theta -> m + s theta (a -> a s, d -> d + a m). That mapping is the
    slowest direction for EM to travel on its own. ``slopes_move`` False (Rasch: a is 1 by
    definition): only the shift. Returns (a, d, E-steps used).
    """
    w = log_normal_weights(nodes)
    for _ in range(steps):
        mass = e_step(counts, a, d, c, nodes, w).mass
        n = float(mass.sum())
        m = float(mass @ nodes / n)
        s = float(np.sqrt(mass @ (nodes - m) ** 2 / n))
        a, d = (a * s if slopes_move else a), d + a * m
    return a, d, steps


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
    "align_scale",
    "e_step",
    "m_step",
    "marginal_log_likelihood",
    "run_em",
]
