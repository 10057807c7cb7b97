"""Item standard errors from the observed information at the EM solution (no Dagster).

The covariance of the estimates is the inverse of the observed information of the EM
objective (the marginal log-likelihood plus the item log-priors, so the SEs of a MAP fit are
its posterior curvature; ``priors=None`` gives maximum-likelihood SEs as mirt reports them).
Two ways, chosen by the number of estimated parameters:

``"observed (full)"`` (at most :data:`FULL_MAX_PARAMS` parameters)
    The whole Hessian, by central differences of the observed gradient. By Fisher's
    identity the observed gradient is the M-step's gradient at the E-step of the same
    parameters, so each column costs two E-steps. This is what mirt's ``SE.type`` values
    ``"Oakes"``, ``"Richardson"`` and ``"SEM"`` estimate; mirt's LSAT7 figures are the check
    (``test_standard_errors.py``).

``"observed (item blocks)"`` (larger banks)
    Louis' (1982) identity per item: the information of item j's parameters is the expected
    complete-data information less the missing information, both summed over the students
    who answered j::

        I_j = sum_q [ n0_jq P''/(1 - P) - r1_jq P''/P ] + sum_i e_ij e_ij'

    with ``r1``, ``n0`` the expected correct / wrong responses at node q (the final E-step),
    ``P''`` the Hessian of P(correct) in the item's parameters and ``e_ij`` the posterior mean
    of student i's score for item j. The blocks between items are left out, so an item's SE
    ignores the uncertainty of the other items' parameters: with the ~100 responses per
    student of the product the students' posteriors are narrow and the difference is small
    (measured against the full matrix in the tests). Cost: one pass over the responses with
    the posterior weights, like one E-step.

The population mean and SD (estimated with anchors) are held at their estimates. A 1PL's shared
slope couples every item: in item blocks its variance is the Schur complement of the
arrow-shaped matrix (the shared slope against every item's intercept). Anchored (fixed) items
get no SE (NaN). ``b = -d / a`` by the delta method with the (a, d) covariance; ``c`` from
logit c by the delta method, ``c (1 - c) se(logit c)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from seedtest_assets.core.irt.data import (
    BLOCK_CELLS,
    THREADS,
    SparseResponses,
    encode,
    interleave,
    map_blocks,
)
from seedtest_assets.core.irt.em import EStep, e_step
from seedtest_assets.core.irt.models import (
    LOGIT_C,
    A,
    D,
    ItemModel,
    ItemPriors,
    log_prob_tables,
)
from seedtest_assets.core.irt.quadrature import log_normal_weights

#: Up to this many estimated parameters the whole Hessian is computed (two E-steps each).
FULL_MAX_PARAMS = 120
#: Central-difference step in the parameters (logits).
STEP = 1e-4

FULL, BLOCKS = "observed (full)", "observed (item blocks)"


@dataclass(frozen=True)
class ItemErrors:
    """Standard errors per item (float64 (n_items,) each; NaN where not estimated).

    ``a_se``, ``d_se``, ``c_se`` (probability scale), ``b_se`` (delta method), ``cov_ad``
    (the covariance of a and d), and the method used (:data:`FULL` or :data:`BLOCKS`).
    ``positive_definite`` is False when the information was not invertible (an item the
    data do not determine): its SEs are then NaN.
    """

    a_se: np.ndarray
    d_se: np.ndarray
    b_se: np.ndarray
    c_se: np.ndarray
    cov_ad: np.ndarray
    method: str
    positive_definite: bool


def item_standard_errors(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    free: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
    nodes: np.ndarray,
    *,
    mean: float = 0.0,
    sd: float = 1.0,
    method: str | None = None,
    step: EStep | None = None,
) -> ItemErrors:
    """SEs of the estimated item parameters at the solution a, d, c (float64 (n_items,)).

    Args:
        counts: the responses (:class:`~.data.SparseResponses`).
        free: bool (n_items,), the estimated items (anchors are False: no SE).
        model, priors, nodes: as in :func:`~.em.run_em`; ``mean``, ``sd`` the population.
        method: :data:`FULL` or :data:`BLOCKS`; None chooses by the parameter count.
        step: the E-step at this solution, if the caller has it (item blocks reuse it).
    """
    cols = _estimated_columns(model)
    k = int(free.sum())
    n_params = k * len(cols) + (1 if model.shared_slope else 0)
    if method is None:
        method = FULL if n_params <= FULL_MAX_PARAMS else BLOCKS
    n = a.size
    cov = np.full((n, 3, 3), np.nan)
    ok = True
    if k and method == FULL:
        cov_sel, ok = _full_covariance(counts, a, d, c, free, model, priors, nodes, mean, sd)
        cov[free] = cov_sel
    elif k and method == BLOCKS:
        cov_sel, ok = _block_covariance(counts, a, d, c, free, model, priors, nodes, mean, sd, step)
        cov[free] = cov_sel
    elif k:
        raise ValueError(f"method must be {FULL!r} or {BLOCKS!r}, got {method!r}")
    var_a, var_d, cov_ad = cov[:, A, A], cov[:, D, D], cov[:, A, D]
    with np.errstate(invalid="ignore", divide="ignore"):
        a_se, d_se = np.sqrt(var_a), np.sqrt(var_d)
        # b = -d/a: db/da = d/a^2, db/dd = -1/a.
        ga, gd = d / a**2, -1.0 / a
        var_b = ga**2 * np.nan_to_num(var_a) + gd**2 * var_d + 2 * ga * gd * np.nan_to_num(cov_ad)
        b_se = np.sqrt(var_b)
        c_se = c * (1 - c) * np.sqrt(cov[:, LOGIT_C, LOGIT_C])
    if model.unit_slope:
        a_se = np.where(free, 0.0, np.nan)  # a = 1 exactly: no sampling error
        cov_ad = np.where(free, 0.0, np.nan)
    if LOGIT_C not in cols:
        c_se = np.where(free, 0.0, np.nan) if model.guessing else np.full(n, np.nan)
    return ItemErrors(a_se, d_se, b_se, c_se, cov_ad, method, ok)


def _estimated_columns(model: ItemModel) -> tuple[int, ...]:
    """The per-item columns of (A, D, LOGIT_C) estimated item by item (a shared slope is
    extra)."""
    return tuple(col for col in (A, D, LOGIT_C) if col in model.item_params)


# --------------------------------------------------------------------------- full Hessian
def _full_covariance(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    free: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
    nodes: np.ndarray,
    mean: float,
    sd: float,
) -> tuple[np.ndarray, bool]:
    """(k, 3, 3) covariance of the free items' (a, d, logit c) from the inverse of the whole
    Hessian of the objective (central differences of the observed gradient)."""
    cols = _estimated_columns(model)
    idx = np.flatnonzero(free)
    k = idx.size
    log_w = log_normal_weights(nodes, mean, sd)

    def pack(aa: np.ndarray, dd: np.ndarray, cc: np.ndarray) -> np.ndarray:
        parts = [_column(aa, dd, cc, col)[idx] for col in cols]
        if model.shared_slope:
            parts.append(aa[idx[:1]])
        return np.concatenate(parts)

    def unpack(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        aa, dd, cc = a.copy(), d.copy(), c.copy()
        for j, col in enumerate(cols):
            part = v[j * k : (j + 1) * k]
            if col == A:
                aa[idx] = part
            elif col == D:
                dd[idx] = part
            else:
                cc[idx] = expit(part)
        if model.shared_slope:
            aa[idx] = v[-1]
        return aa, dd, cc

    def gradient(v: np.ndarray) -> np.ndarray:
        aa, dd, cc = unpack(v)
        step = e_step(counts, aa, dd, cc, nodes, log_w)
        g, _ = model.gradient_information(
            aa[idx], dd[idx], cc[idx], step.r1[idx], step.nn[idx], nodes, priors
        )
        parts = [g[:, col] for col in cols]
        if model.shared_slope:
            parts.append(np.array([g[:, A].sum()]))
        return np.concatenate(parts)

    x0 = pack(a, d, c)
    m = x0.size
    hess = np.empty((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = STEP
        hess[:, j] = (gradient(x0 + e) - gradient(x0 - e)) / (2 * STEP)
    info = -0.5 * (hess + hess.T)
    cov_full, ok = _inverse(info)
    out = np.full((k, 3, 3), np.nan)
    for p, col_p in enumerate(cols):
        for q, col_q in enumerate(cols):
            out[:, col_p, col_q] = cov_full[p * k + np.arange(k), q * k + np.arange(k)]
    if model.shared_slope:
        out[:, A, A] = cov_full[-1, -1]
        out[:, A, D] = out[:, D, A] = cov_full[-1, (cols.index(D)) * k + np.arange(k)]
    return out, ok


def _column(a: np.ndarray, d: np.ndarray, c: np.ndarray, col: int) -> np.ndarray:
    if col == A:
        return a
    if col == D:
        return d
    with np.errstate(divide="ignore"):
        return np.log(c) - np.log1p(-c)


def _inverse(info: np.ndarray) -> tuple[np.ndarray, bool]:
    """The inverse of a symmetric information matrix, NaN if it is not positive definite."""
    try:
        np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        return np.full_like(info, np.nan), False
    return np.linalg.inv(info), True


# --------------------------------------------------------------------------- item blocks
def _block_covariance(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    free: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
    nodes: np.ndarray,
    mean: float,
    sd: float,
    step: EStep | None = None,
) -> tuple[np.ndarray, bool]:
    """(k, 3, 3) covariance of the free items from Louis' per-item information blocks."""
    info = louis_item_blocks(counts, a, d, c, model, priors, nodes, mean, sd, step)[free]
    cols = list(_estimated_columns(model))
    k = info.shape[0]
    out = np.full((k, 3, 3), np.nan)
    ok = True
    if model.shared_slope:
        # Arrow matrix: each item's d against the one shared slope; the slope's own
        # information is the sum over items (the blocks between items left out).
        i_dd, i_da, i_aa = info[:, D, D], info[:, D, A], float(info[:, A, A].sum())
        schur = i_aa - float(np.sum(i_da**2 / i_dd))
        if schur <= 0 or np.any(i_dd <= 0):
            return out, False
        var_a = 1.0 / schur
        out[:, A, A] = var_a
        out[:, A, D] = out[:, D, A] = -var_a * i_da / i_dd
        out[:, D, D] = 1.0 / i_dd + var_a * (i_da / i_dd) ** 2
        return out, True
    sub = info[:, cols][:, :, cols]
    for j in range(k):
        inv, good = _inverse(sub[j])
        ok &= good
        out[j][np.ix_(cols, cols)] = inv
    return out, ok


def louis_item_blocks(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    model: ItemModel,
    priors: ItemPriors,
    nodes: np.ndarray,
    mean: float = 0.0,
    sd: float = 1.0,
    step: EStep | None = None,
) -> np.ndarray:
    """Observed information of each item's (a, d, logit c): float64 (n_items, 3, 3) by
    Louis' identity (module doc), prior curvature included. Columns a model does not
    estimate are left for the caller to ignore. ``step``: the E-step at these parameters
    and population, if the caller has it (else it is run)."""
    n_items = a.size
    log_w = log_normal_weights(nodes, mean, sd)
    if step is None:
        step = e_step(counts, a, d, c, nodes, log_w)
    psi, cc, p, rho = _response_terms(a, d, c, nodes)
    right, wrong = step.r1, step.nn - step.r1
    # (n0 / (1 - P) - r1 / P) times the Hessian of P, with the divisions done analytically
    # (1 - P = (1 - c)(1 - psi)), so that no extreme item divides by an underflowed P.
    m_zz = (wrong * psi - right * rho * (1 - psi)) * (1 - 2 * psi)
    m_zg = -cc * (wrong * psi - right * rho * (1 - psi))
    with np.errstate(divide="ignore", invalid="ignore"):
        c_over_p = np.where(cc > 0, cc * (1 - cc) * (1 - psi) / p, 0.0)
    m_gg = (1 - 2 * cc) * (wrong * cc - right * c_over_p)
    info = np.zeros((n_items, 3, 3))
    t = nodes[None, :]
    info[:, A, A] = np.sum(m_zz * t * t, axis=1)
    info[:, A, D] = info[:, D, A] = np.sum(m_zz * t, axis=1)
    info[:, D, D] = np.sum(m_zz, axis=1)
    info[:, A, LOGIT_C] = info[:, LOGIT_C, A] = np.sum(m_zg * t, axis=1)
    info[:, D, LOGIT_C] = info[:, LOGIT_C, D] = np.sum(m_zg, axis=1)
    info[:, LOGIT_C, LOGIT_C] = np.sum(m_gg, axis=1)
    params = (*model.item_params, A) if model.shared_slope else model.item_params
    info += _missing_information(counts, a, d, c, nodes, log_w, n_items, tuple(params))
    prior = np.zeros((n_items, 3, 3))
    grad = np.zeros((n_items, 3))
    for term in model.prior_terms(priors):
        term.add_derivatives(grad, prior, a, d, c)
    return info + prior


def _response_terms(
    a: np.ndarray, d: np.ndarray, c: np.ndarray, nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """psi = expit(a theta + d) and P (n_items, Q), c as a column (n_items, 1), and
    rho = (1 - c) psi / P (1 where P underflowed: c = 0 and psi = 0)."""
    psi = expit(a[:, None] * nodes[None, :] + d[:, None])
    cc = c[:, None]
    p = cc + (1 - cc) * psi
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(p > 0, (1 - cc) * psi / p, 1.0)
    return psi, cc, p, rho


def _scores(a: np.ndarray, d: np.ndarray, c: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """One response's score in (a, d, logit c) at every node, by outcome: float64
    (3, 2 n_items, Q), row ``2 i + y`` for outcome y of item i (the layout of the counts)."""
    psi, cc, p, rho = _response_terms(a, d, c, nodes)
    out = np.empty((3, 2 * a.size, nodes.size))
    # d log P / dz = (1 - c) psi (1 - psi) / P = rho (1 - psi); d log(1 - P) / dz = -psi;
    # d log P / dlogit c = c (1 - c)(1 - psi) / P; d log(1 - P) / dlogit c = -c.
    right_z, wrong_z = rho * (1 - psi), -psi * np.ones_like(cc)
    with np.errstate(divide="ignore", invalid="ignore"):
        right_g = np.where(cc > 0, cc * (1 - cc) * (1 - psi) / p, 0.0)
    wrong_g = -cc * np.ones_like(psi)
    out[A, 1::2], out[A, 0::2] = right_z * nodes, wrong_z * nodes
    out[D, 1::2], out[D, 0::2] = right_z, wrong_z
    out[LOGIT_C, 1::2], out[LOGIT_C, 0::2] = right_g, wrong_g
    return out


def _missing_information(
    counts: SparseResponses,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    nodes: np.ndarray,
    log_w: np.ndarray,
    n_items: int,
    params: tuple[int, ...] = (A, D, LOGIT_C),
) -> np.ndarray:
    """sum_i e_ij e_ij' per item (n_items, 3, 3), where e_ij is the posterior mean of student
    i's total score for item j (all their responses to it), less the cross terms of repeated
    responses, which the per-response formula of the expected part counted as independent:
    ``E_i[s s'] = sum_r E[s_r s_r'] + sum_{r != r'} E[s_r s_r']``. Only the columns
    ``params`` are computed (the others stay 0). User blocks run on two threads."""
    log_p, log_q = log_prob_tables(a, d, c, nodes)
    table = interleave(log_q, log_p)
    scores = _scores(a, d, c, nodes)
    n_users, q = counts.counts.shape[0], nodes.size
    # At least two blocks per thread: 49k students in 3 blocks left one thread idle for a
    # third of the time.
    step = max(1, min(BLOCK_CELLS // q, -(-n_users // (2 * THREADS))))
    pars = [par for par in (A, D, LOGIT_C) if par in params]
    # (2 n_items, parameters, Q): one gather per response serves every parameter.
    by_col = np.ascontiguousarray(scores[pars].transpose(1, 0, 2))

    def run(start: int) -> np.ndarray:
        part = counts.rows(start, min(start + step, n_users))
        post = part @ table
        post += log_w
        post -= post.max(axis=1, keepdims=True)
        np.exp(post, out=post)
        post /= post.sum(axis=1, keepdims=True)
        users = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
        cols, cnt = part.indices.astype(np.int64), part.data.astype(np.float64)
        # Posterior mean score per (user, column), in chunks of 4,096 responses: the
        # gathered (chunk, Q) rows stay in cache (65,536 took 1.7x as long at 5M).
        e_par = np.empty((cols.size, len(pars)))
        for lo in range(0, cols.size, 4_096):
            hi = min(lo + 4_096, cols.size)
            e_par[lo:hi] = np.einsum("nq,npq->np", post[users[lo:hi]], by_col[cols[lo:hi]])
        e = np.zeros((3, cols.size))
        e[pars] = e_par.T
        total = e * cnt
        item = cols // 2
        # (user, item) pairs: a user may have both outcomes of an item, or repeats.
        key = users * n_items + item
        uniq, inv = encode(key)  # np.unique, without its sort for in-order keys
        pair = np.zeros((3, uniq.size))
        for par in pars:
            pair[par] = np.bincount(inv, weights=total[par], minlength=uniq.size)
        pair_item = uniq % n_items
        out = np.zeros((n_items, 3, 3))
        for i, p1 in enumerate(pars):
            for p2 in pars[i:]:
                v = np.bincount(pair_item, weights=pair[p1] * pair[p2], minlength=n_items)
                out[:, p1, p2] += v
                if p1 != p2:
                    out[:, p2, p1] += v
        multi = np.bincount(inv, weights=cnt, minlength=uniq.size) > 1
        if multi.any():
            out -= _repeat_cross_terms(post, users, cols, cnt, inv, multi, uniq, scores, n_items)
        return out

    parts = map_blocks(run, range(0, n_users, step))
    return np.sum(parts, axis=0) if parts else np.zeros((n_items, 3, 3))


def _repeat_cross_terms(
    post: np.ndarray,
    users: np.ndarray,
    cols: np.ndarray,
    cnt: np.ndarray,
    inv: np.ndarray,
    multi: np.ndarray,
    uniq: np.ndarray,
    scores: np.ndarray,
    n_items: int,
) -> np.ndarray:
    """sum over (user, item) pairs with several responses of sum_{r != r'} E[s_r s_r'],
    (n_items, 3, 3): the part of a student's score variance that the per-response expected
    information did not hold. With c1 right and c0 wrong responses it is
    ``E[(c1^2 - c1) s1 s1' + (c0^2 - c0) s0 s0' + c1 c0 (s1 s0' + s0 s1')]``.

    The scores s1, s0 depend on the item and the node only, so the sum over an item's pairs
    moves inside: per item, three posterior sums weighted by those coefficients (sparse
    products, like the E-step's expected counts), then one product with the scores per node.
    (Per pair, a (pairs, 3, 3, Q) product took 60% of the SEs' time on the product's data,
    where 8% of the pairs are repeats.)"""
    n_pairs = uniq.size
    right = (cols % 2).astype(bool)
    c1 = np.bincount(inv, weights=cnt * right, minlength=n_pairs)[multi]
    c0 = np.bincount(inv, weights=cnt * ~right, minlength=n_pairs)[multi]
    # The pair's user (any of its rows) and item.
    first_row = np.full(n_pairs, -1)
    first_row[inv[::-1]] = np.arange(inv.size)[::-1]
    user = users[first_row[multi]]
    item = (uniq % n_items)[multi]
    shape = (n_items, post.shape[0])
    w11, w00, w10 = (
        sp.csr_array((coef, (item, user)), shape=shape) @ post
        for coef in (c1 * c1 - c1, c0 * c0 - c0, c1 * c0)
    )  # (n_items, Q) each
    s1, s0 = scores[:, 1::2], scores[:, 0::2]  # (3, n_items, Q)
    return (
        np.einsum("jq,pjq,rjq->jpr", w11, s1, s1)
        + np.einsum("jq,pjq,rjq->jpr", w00, s0, s0)
        + np.einsum("jq,pjq,rjq->jpr", w10, s1, s0)
        + np.einsum("jq,pjq,rjq->jpr", w10, s0, s1)
    )
