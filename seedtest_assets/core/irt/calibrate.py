"""Item calibration: marginal maximum likelihood (MAP with weak item priors) by Bock-Aitkin EM.

Model
    ``P(correct | theta) = c + (1 - c) / (1 + exp(-(a theta + d)))`` (slope-intercept, as mirt),
    reported with ``b = -d / a``. ``theta ~ N(0, 1)`` in the calibration population, which sets
    the scale (unless items are anchored, see below). Models:

    - ``"2PL"`` (default): a, d per item, c = 0.
    - ``"1PL"``: one common slope a for all (free) items, d per item, theta ~ N(0, 1). This is
      the Rasch model with a free latent variance, reparameterized (variance = a^2).
    - ``"Rasch"``: a fixed at exactly 1, theta ~ N(0, 1): only fits when the population SD is
      about 1 logit; prefer "1PL" otherwise.
    - ``"3PL"``: a, d, c per item, with a Beta(5, 17) prior on c by default (see
      :class:`ItemPriors`; ``priors=ItemPriors(guess=None)`` turns it
      off, as in mirt's default).

EM (the data never becomes a dense person x item matrix)
    Responses are sparse count matrices, users x items (CSR). Each cycle:

    E-step
        per-user log-likelihood at every node: ``L = R1 @ (log P - log(1-P)) + N @ log(1-P)``
        (sparse (n_users x n_items) @ dense (n_items x Q)), posterior weights per user, and the
        expected counts per item and node ``r = R1^T @ W``, ``n = N^T @ W`` through the
        item-major transposes; in blocks of users on two threads, so W (n_users x Q) is never
        held whole.
    M-step
        Fisher scoring on (a, d) (and logit c for 3PL) for all items at once (batched 2x2 or
        3x3 solves), at most ``NEWTON_STEPS`` steps per cycle, steps scaled down to at most
        ``MAX_STEP`` and halved until the item's objective does not decrease. So the EM
        objective, log-likelihood + log-prior, never decreases (``log_posterior_trace``); the
        plain log-likelihood (``log_likelihood_trace``) follows it to within the prior's tiny
        pull (tested).

    Stops when no parameter (a, d, and c on the probability scale; plus the population mean
    and SD when estimated) moves more than ``tol`` = 1e-4 between cycles, or after
    ``max_cycles`` = 500 (then ``converged`` is False).

Flags
    Items with fewer than ``min_responses`` (default 10) responses, or all responses correct or
    all wrong, are flagged (``flagged``, ``flag_reason`` = ``"few_responses"``,
    ``"all_correct"``, ``"all_wrong"``, joined by ``";"``). They are still estimated: the
    priors keep them finite (an all-correct item with 100 responses lands near d = 7), but
    their parameters should not be trusted. Items whose estimated slope is negative get
    ``"negative_slope"`` (usually a miskeyed item).

Linking weeks (anchoring)
    ``fixed_items`` holds known parameters (item_id, a and b or d, optionally c); those items
    keep them exactly and only the other items are estimated, so new items land on the scale
    of the anchors. Weekly use: calibrate week w with ``fixed_items`` = the previous week's
    parameters of every item seen before (unflagged ones), so only new items are estimated
    and the theta scale stays the one of the first calibration. With anchors the population
    mean and SD of theta are estimated too (the new week's students may be abler than the
    first week's; keeping N(0, 1) would push that difference into the new items' b). Items in
    ``fixed_items`` without responses are returned unchanged with ``n_responses = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.special import expit, logit

from seedtest_assets.core.irt._data import (
    SparseResponses,
    interleave,
    response_arrays,
    sparse_counts,
)
from seedtest_assets.core.irt._model import (
    DEFAULT_CALIBRATION_POINTS,
    ItemPriors,
    grid,
    log_normal_weights,
    log_prob_tables,
)

MODELS = {"1PL": "1PL", "RASCH": "Rasch", "2PL": "2PL", "3PL": "3PL"}
DEFAULT_MIN_RESPONSES = 10
NEWTON_STEPS = 3
#: Largest Newton step per parameter (a, d, logit c) in one M-step iteration.
MAX_STEP = 1.0
HALVINGS = 12
#: Guessing is estimated as logit(c) and clipped to this range (c in [2.5e-7, 0.9997]).
LOGIT_C_BOUNDS = (-15.0, 8.0)

ITEM_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.Int64(),
    "a": pl.Float64(),
    "b": pl.Float64(),
    "c": pl.Float64(),
    "d": pl.Float64(),
    "n_responses": pl.Int64(),
    "flagged": pl.Boolean(),
    "flag_reason": pl.String(),
    "fixed": pl.Boolean(),
}


@dataclass
class Calibration:
    """Result of :func:`calibrate`.

    - ``items``: one row per item (see ``ITEM_SCHEMA``): item_id, a, b, c, d, n_responses,
      flagged, flag_reason, fixed (True for anchored items).
    - ``log_likelihood``: marginal log-likelihood (nats, quadrature approximation) at the
      returned parameters; ``log_posterior`` adds the item log-priors (the EM objective).
    - ``log_likelihood_trace`` / ``log_posterior_trace``: their values at the start of every
      EM cycle, then at the solution (length ``iterations + 1``).
    - ``population_mean`` / ``population_sd``: theta distribution of this calibration's users
      (0 and 1 unless estimated, i.e. unless items are anchored).
    """

    items: pl.DataFrame
    log_likelihood: float
    log_posterior: float
    converged: bool
    iterations: int
    model: str
    log_likelihood_trace: list[float] = field(default_factory=list)
    log_posterior_trace: list[float] = field(default_factory=list)
    population_mean: float = 0.0
    population_sd: float = 1.0
    quadrature_points: int = DEFAULT_CALIBRATION_POINTS


def calibrate(
    responses: pl.DataFrame,
    model: str = "2PL",
    *,
    fixed_items: pl.DataFrame | None = None,
    quadrature_points: int = DEFAULT_CALIBRATION_POINTS,
    max_cycles: int = 500,
    tol: float = 1e-4,
    min_responses: int = DEFAULT_MIN_RESPONSES,
    priors: ItemPriors | None = ItemPriors(),  # noqa: B008 - frozen dataclass, immutable
    estimate_population: bool | None = None,
) -> Calibration:
    """Calibrate item parameters from sparse responses by Bock-Aitkin EM.

    Args:
        responses: polars frame with ``user_id``, ``item_id`` (integers, any values) and
            ``is_correct`` (bool or 0/1); one row per response.
        model: "2PL" (default), "1PL", "Rasch" or "3PL" (case-insensitive).
        fixed_items: anchored items: ``item_id``, ``a`` and ``b`` or ``d``, optional ``c``.
        quadrature_points: nodes of the theta grid on [-6, 6] (61 as in mirt; enough for
            ~50 responses per user, see the notes; users with hundreds of responses need more).
        max_cycles: EM cycle limit; tol: convergence threshold on parameter changes.
        min_responses: items with fewer responses are flagged.
        priors: item priors (:class:`ItemPriors`), or None for plain maximum likelihood.
        estimate_population: estimate theta's mean and SD; default: only with anchors.

    Raises:
        ValueError: empty responses, unknown model, bad ``fixed_items``.
    """
    model_name = MODELS.get(str(model).upper())
    if model_name is None:
        raise ValueError(f"model must be one of 1PL, Rasch, 2PL, 3PL; got {model!r}")
    if max_cycles < 1:
        raise ValueError("max_cycles must be at least 1")
    priors = priors if priors is not None else ItemPriors(None, None, None)
    data = response_arrays(responses)
    n_users, n_items = data.user_ids.size, data.item_ids.size
    counts = sparse_counts(data.users, data.items, data.correct, n_users, n_items)
    n_resp = np.bincount(data.items, minlength=n_items).astype(np.int64)
    n_right = np.bincount(data.items, weights=data.correct, minlength=n_items)

    # Anchors: items in fixed_items keep their parameters; extra anchors (no responses) are
    # appended to the output unchanged.
    fixed = np.zeros(n_items, dtype=bool)
    a = np.ones(n_items)
    c = np.zeros(n_items)
    p_hat = np.clip((n_right + 0.5) / (n_resp + 1.0), 0.02, 0.98)
    if model_name == "3PL":
        c[:] = 0.2 if priors.guess is None else _beta_mode(priors.guess)
        p_hat = np.clip((p_hat - c) / (1 - c), 0.02, 0.98)
    # Marginal P of a 2PL item with a = 1 under N(0, 1) is about expit(d / 1.2).
    d = 1.2 * logit(p_hat)
    extra_anchors = None
    if fixed_items is not None and fixed_items.height > 0:
        fa, fd, fc, fids = _anchor_params(fixed_items)
        pos = np.searchsorted(data.item_ids, fids)
        pos_c = np.minimum(pos, n_items - 1)
        seen = data.item_ids[pos_c] == fids
        fixed[pos_c[seen]] = True
        a[pos_c[seen]], d[pos_c[seen]], c[pos_c[seen]] = fa[seen], fd[seen], fc[seen]
        if (~seen).any():
            extra_anchors = (fids[~seen], fa[~seen], fd[~seen], fc[~seen])
    free = ~fixed
    if model_name == "1PL" and fixed.any() and free.any():
        a[free] = 1.0
    pop_free = bool(fixed.any()) if estimate_population is None else bool(estimate_population)

    nodes = grid(quadrature_points)
    mean, sd = 0.0, 1.0
    log_prior_w = log_normal_weights(nodes, mean, sd)
    ll_trace: list[float] = []
    lp_trace: list[float] = []
    converged = False
    cycles = 0
    for cycle in range(1, max_cycles + 1):
        cycles = cycle
        # expected correct / responses (n_items, Q) and posterior mass per node (Q,)
        ll, r1, nn, mass = _e_step(counts, a, d, c, nodes, log_prior_w)
        ll_trace.append(ll)
        lp_trace.append(ll + _log_prior(a, d, c, free, model_name, priors))
        old = (a.copy(), d.copy(), c.copy(), mean, sd)
        a, d, c = _m_step(a, d, c, r1, nn, nodes, free, model_name, priors)
        if pop_free:
            # Population moments from the posterior weights: the exact M-step for a normal
            # latent distribution (up to its discretization on the grid).
            mean = float(mass @ nodes / n_users)
            sd = float(np.sqrt(mass @ (nodes - mean) ** 2 / n_users))
            log_prior_w = log_normal_weights(nodes, mean, sd)
        change = max(
            np.max(np.abs(a - old[0]), initial=0.0),
            np.max(np.abs(d - old[1]), initial=0.0),
            np.max(np.abs(c - old[2]), initial=0.0),
            abs(mean - old[3]),
            abs(sd - old[4]),
        )
        del r1, nn
        if change < tol:
            converged = True
            break
    ll, *_ = _e_step(counts, a, d, c, nodes, log_prior_w, expected=False)
    lp = ll + _log_prior(a, d, c, free, model_name, priors)
    ll_trace.append(ll)
    lp_trace.append(lp)

    items = _items_frame(
        data.item_ids, a, d, c, n_resp, n_right, fixed, min_responses, extra_anchors
    )
    return Calibration(
        items=items,
        log_likelihood=ll,
        log_posterior=lp,
        converged=converged,
        iterations=cycles,
        model=model_name,
        log_likelihood_trace=ll_trace,
        log_posterior_trace=lp_trace,
        population_mean=mean,
        population_sd=sd,
        quadrature_points=int(quadrature_points),
    )


def _beta_mode(ab: tuple[float, float]) -> float:
    alpha, beta = ab
    return (alpha - 1.0) / (alpha + beta - 2.0) if alpha > 1 and beta > 1 else 0.2


def _anchor_params(
    frame: pl.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a, d, c, item_id) arrays from an anchor frame with a and b or d (c optional)."""
    if "item_id" not in frame.columns or "a" not in frame.columns:
        raise ValueError("fixed_items needs columns item_id, a and b or d")
    ids = frame["item_id"].cast(pl.Int64).to_numpy()
    if np.unique(ids).size != ids.size:
        raise ValueError("fixed_items has duplicate item_id values")
    fa = frame["a"].cast(pl.Float64).to_numpy().copy()
    if "d" in frame.columns and frame["d"].null_count() == 0:
        fd = frame["d"].cast(pl.Float64).to_numpy().copy()
    elif "b" in frame.columns:
        fd = -fa * frame["b"].cast(pl.Float64).to_numpy()
    else:
        raise ValueError("fixed_items needs b or d")
    if "c" in frame.columns:
        fc = frame["c"].cast(pl.Float64).fill_null(0.0).to_numpy().copy()
    else:
        fc = np.zeros(ids.size)
    if not (np.isfinite(fa).all() and np.isfinite(fd).all() and np.isfinite(fc).all()):
        raise ValueError("fixed_items parameters must be finite")
    if ((fc < 0) | (fc >= 1)).any():
        raise ValueError("fixed_items c must lie in [0, 1)")
    order = np.argsort(ids)
    return fa[order], fd[order], fc[order], ids[order]


def _e_step(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    nodes: np.ndarray,
    log_prior_w: np.ndarray,
    expected: bool = True,
) -> tuple[float, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Marginal log-likelihood (nats) and, if ``expected``, the expected correct and total
    responses per item and node (two float64 (n_items, Q)) and the posterior mass per node
    (float64 (Q,), sums to n_users). Blocked over users (:meth:`SparseResponses.posterior`)."""
    log_p, log_q = log_prob_tables(a, d, c, nodes)
    ll, both, mass = counts.posterior(interleave(log_q, log_p), log_prior_w, expected)
    if both is None:
        return ll, None, None, None
    right = both[1::2]
    return ll, right, right + both[0::2], mass


def _log_prior(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    free: np.ndarray,
    model: str,
    priors: ItemPriors,
) -> float:
    """Sum of item log-priors over free items (constants dropped)."""
    total = 0.0
    if priors.slope is not None and model in ("2PL", "3PL"):
        total -= 0.5 * np.sum(((a[free] - priors.slope[0]) / priors.slope[1]) ** 2)
    if priors.intercept is not None:
        total -= 0.5 * np.sum(((d[free] - priors.intercept[0]) / priors.intercept[1]) ** 2)
    if priors.guess is not None and model == "3PL":
        alpha, beta = priors.guess
        cf = c[free]
        total += np.sum((alpha - 1) * np.log(cf) + (beta - 1) * np.log1p(-cf))
    return float(total)


def _item_objective(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    r1: np.ndarray,
    nn: np.ndarray,
    nodes: np.ndarray,
    model: str,
    priors: ItemPriors,
) -> np.ndarray:
    """Expected complete-data log-posterior per item: float64 (k,) for k rows of r1/nn."""
    log_p, log_q = log_prob_tables(a, d, c, nodes)
    value = np.sum(r1 * log_p + (nn - r1) * log_q, axis=1)
    if priors.slope is not None and model in ("2PL", "3PL"):
        value -= 0.5 * ((a - priors.slope[0]) / priors.slope[1]) ** 2
    if priors.intercept is not None:
        value -= 0.5 * ((d - priors.intercept[0]) / priors.intercept[1]) ** 2
    if priors.guess is not None and model == "3PL":
        alpha, beta = priors.guess
        value += (alpha - 1) * np.log(c) + (beta - 1) * np.log1p(-c)
    return np.where(np.isfinite(value), value, -np.inf)


def _gradient_information(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    r1: np.ndarray,
    nn: np.ndarray,
    nodes: np.ndarray,
    model: str,
    priors: ItemPriors,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (k, 3) and Fisher information (k, 3, 3) in (a, d, logit c) per item.

    With psi = expit(z), P = c + (1-c) psi: dlogL/dz = (r - nP) psi / P and
    dlogL/dlogit(c) = (r - nP) c / P; the Fisher weights follow from dP/dz = (1-c) psi (1-psi)
    and dP/dlogit(c) = c (1-c) (1-psi), written so that nothing divides by P (1-P) (which
    underflows for extreme items).
    """
    z = a[:, None] * nodes[None, :] + d[:, None]
    psi = expit(z)
    cc = c[:, None]
    p = cc + (1 - cc) * psi
    resid = r1 - nn * p
    k = a.size
    grad = np.zeros((k, 3))
    info = np.zeros((k, 3, 3))
    if model == "3PL":
        psi_p = psi / p
        c_p = cc / p
        g_z = resid * psi_p
        g_g = resid * c_p
        w_zz = nn * (1 - cc) * psi * (1 - psi) * psi_p
        w_zg = nn * (1 - cc) * psi * (1 - psi) * c_p
        w_gg = nn * cc * (1 - cc) * (1 - psi) * c_p
        grad[:, 2] = g_g.sum(axis=1)
        info[:, 0, 2] = info[:, 2, 0] = w_zg @ nodes
        info[:, 1, 2] = info[:, 2, 1] = w_zg.sum(axis=1)
        info[:, 2, 2] = w_gg.sum(axis=1)
    else:
        g_z = resid
        w_zz = nn * psi * (1 - psi)
    grad[:, 0] = g_z @ nodes
    grad[:, 1] = g_z.sum(axis=1)
    info[:, 0, 0] = w_zz @ (nodes**2)
    info[:, 0, 1] = info[:, 1, 0] = w_zz @ nodes
    info[:, 1, 1] = w_zz.sum(axis=1)
    if priors.slope is not None and model in ("2PL", "3PL"):
        grad[:, 0] -= (a - priors.slope[0]) / priors.slope[1] ** 2
        info[:, 0, 0] += 1.0 / priors.slope[1] ** 2
    if priors.intercept is not None:
        grad[:, 1] -= (d - priors.intercept[0]) / priors.intercept[1] ** 2
        info[:, 1, 1] += 1.0 / priors.intercept[1] ** 2
    if priors.guess is not None and model == "3PL":
        alpha, beta = priors.guess
        grad[:, 2] += (alpha - 1) * (1 - c) - (beta - 1) * c
        info[:, 2, 2] += (alpha + beta - 2) * c * (1 - c)
    return grad, info


def _m_step(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    r1: np.ndarray,
    nn: np.ndarray,
    nodes: np.ndarray,
    free: np.ndarray,
    model: str,
    priors: ItemPriors,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fisher-scoring steps with step halving for the free items; returns new (a, d, c)."""
    a, d, c = a.copy(), d.copy(), c.copy()
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return a, d, c
    # Which of (a, d, logit c) each model estimates per item; 1PL's common slope is a
    # separate block update below.
    params = {"2PL": [0, 1], "3PL": [0, 1, 2], "1PL": [1], "Rasch": [1]}[model]
    r1f, nnf = r1[idx], nn[idx]
    af, df, cf = a[idx], d[idx], c[idx]
    for _ in range(NEWTON_STEPS):
        value = _item_objective(af, df, cf, r1f, nnf, nodes, model, priors)
        grad, info = _gradient_information(af, df, cf, r1f, nnf, nodes, model, priors)
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
    if model == "1PL":
        af = _common_slope(af, df, cf, r1f, nnf, nodes, model, priors)
    a[idx], d[idx], c[idx] = af, df, cf
    return a, d, c


def _apply(
    a: np.ndarray, d: np.ndarray, c: np.ndarray, step: np.ndarray, params: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a2, d2, c2 = a.copy(), d.copy(), c.copy()
    for col, which in enumerate(params):
        if which == 0:
            a2 = a + step[:, col]
        elif which == 1:
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
    model: str,
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
        tv = _item_objective(ta, td, tc, r1[rows], nn[rows], nodes, model, priors)
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


def _common_slope(
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    r1: np.ndarray,
    nn: np.ndarray,
    nodes: np.ndarray,
    model: str,
    priors: ItemPriors,
) -> np.ndarray:
    """1PL: Newton steps on the slope shared by all free items (sum of item gradients)."""
    slope = float(a[0])
    total = float(np.sum(_item_objective(a, d, c, r1, nn, nodes, model, priors)))
    for _ in range(NEWTON_STEPS):
        grad, info = _gradient_information(a, d, c, r1, nn, nodes, model, priors)
        step = float(np.sum(grad[:, 0]) / max(np.sum(info[:, 0, 0]), 1e-12))
        step = float(np.clip(step, -MAX_STEP, MAX_STEP))
        for _ in range(HALVINGS):
            trial = np.full_like(a, slope + step)
            value = float(np.sum(_item_objective(trial, d, c, r1, nn, nodes, model, priors)))
            if value >= total:
                slope, total, a = slope + step, value, trial
                break
            step *= 0.5
        else:
            break
        if abs(step) < 1e-10:
            break
    return a


def _items_frame(
    item_ids: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    n_resp: np.ndarray,
    n_right: np.ndarray,
    fixed: np.ndarray,
    min_responses: int,
    extra_anchors: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None,
) -> pl.DataFrame:
    reasons: list[str | None] = []
    for n, r, fx, slope in zip(n_resp, n_right, fixed, a, strict=True):
        parts = []
        if fx:
            reasons.append(None)
            continue
        if n < min_responses:
            parts.append("few_responses")
        if r == n:
            parts.append("all_correct")
        elif r == 0:
            parts.append("all_wrong")
        if slope < 0:
            parts.append("negative_slope")
        reasons.append(";".join(parts) if parts else None)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = -d / a
    frame = pl.DataFrame(
        {
            "item_id": item_ids,
            "a": a,
            "b": b,
            "c": c,
            "d": d,
            "n_responses": n_resp,
            "flagged": [r is not None for r in reasons],
            "flag_reason": reasons,
            "fixed": fixed,
        },
        schema=ITEM_SCHEMA,
    )
    if extra_anchors is not None:
        ids, fa, fd, fc = extra_anchors
        with np.errstate(divide="ignore", invalid="ignore"):
            fb = -fd / fa
        extra = pl.DataFrame(
            {
                "item_id": ids,
                "a": fa,
                "b": fb,
                "c": fc,
                "d": fd,
                "n_responses": np.zeros(ids.size, dtype=np.int64),
                "flagged": np.zeros(ids.size, dtype=bool),
                "flag_reason": [None] * ids.size,
                "fixed": np.ones(ids.size, dtype=bool),
            },
            schema=ITEM_SCHEMA,
        )
        frame = pl.concat([frame, extra]).sort("item_id")
    return frame


__all__ = ["MODELS", "Calibration", "ItemPriors", "calibrate"]
