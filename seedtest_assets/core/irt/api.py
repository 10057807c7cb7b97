"""The calibration interface: :func:`calibrate` and its result :class:`Calibration`.

Marginal maximum likelihood (MAP with weak item priors) by Bock-Aitkin EM. This module
validates the inputs (model name, priors, anchors), sets up the starting values, runs the EM
(:mod:`.em`) and builds the result frames and flags; the item models live in :mod:`.models`
(one class per model), response parsing in :mod:`.data`.

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

EM
    Bock-Aitkin on sparse user x item count matrices, Fisher-scoring M-steps with step
    halving, so the EM objective, log-likelihood + log-prior, never decreases
    (``log_posterior_trace``); the plain log-likelihood (``log_likelihood_trace``) follows it
    to within the prior's tiny pull (tested). Details in :mod:`.em`.

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

from seedtest_assets.core.irt.data import (
    IdCodes,
    parse_item_params,
    response_arrays,
    sparse_counts,
)
from seedtest_assets.core.irt.em import align_scale, run_em
from seedtest_assets.core.irt.models import (
    LOGIT_C,
    MODELS,
    NO_PRIORS,
    A,
    ItemModel,
    ItemPriors,
    difficulty,
    get_model,
)
from seedtest_assets.core.irt.quadrature import DEFAULT_CALIBRATION_POINTS, grid
from seedtest_assets.core.irt.standard_errors import ItemErrors, item_standard_errors
from seedtest_assets.core.options import Acceleration, IrtModel

DEFAULT_MIN_RESPONSES = 10

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

#: Columns ``calibrate(..., standard_errors=True)`` adds to ``items`` (Float64): the SEs, and
#: ``ad_cov``, the covariance of a and d (what moving d to another scale needs).
SE_COLUMNS = ["a_se", "b_se", "c_se", "d_se", "ad_cov"]

#: Anchors without responses: (item ids in the responses' dtype, a, d, c float64 (k,) each).
ExtraAnchors = tuple[pl.Series, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Calibration:
    """Result of :func:`calibrate`.

    - ``items``: one row per item (see ``ITEM_SCHEMA``): item_id, a, b, c, d, n_responses,
      flagged, flag_reason, fixed (True for anchored items); ``item_id`` keeps the dtype of
      the responses' ``item_id`` (Int64 in ``ITEM_SCHEMA`` is the integer case).
    - ``log_likelihood``: marginal log-likelihood (nats, quadrature approximation) at the
      returned parameters; ``log_posterior`` adds the item log-priors (the EM objective).
    - ``log_likelihood_trace`` / ``log_posterior_trace``: their values at the start of every
      EM cycle, then at the solution (length ``iterations + 1``).
    - ``population_mean`` / ``population_sd``: theta distribution of this calibration's users
      (0 and 1 unless estimated, i.e. unless items are anchored).
    - ``model``: the model's canonical name (``"Rasch"``, ``"1PL"``, ``"2PL"``, ``"3PL"``).
    """

    items: pl.DataFrame
    log_likelihood: float
    log_posterior: float
    converged: bool
    iterations: int
    model: IrtModel
    log_likelihood_trace: list[float] = field(default_factory=list)
    log_posterior_trace: list[float] = field(default_factory=list)
    population_mean: float = 0.0
    population_sd: float = 1.0
    quadrature_points: int = DEFAULT_CALIBRATION_POINTS
    #: How ``a_se``/``b_se``/``c_se``/``d_se`` were computed (:mod:`.standard_errors`), or
    #: None when they were not asked for.
    se_method: str | None = None
    #: False when some item's information was not invertible (its SEs are NaN).
    se_positive_definite: bool | None = None


def calibrate(
    responses: pl.DataFrame,
    model: IrtModel = "2PL",
    *,
    fixed_items: pl.DataFrame | None = None,
    quadrature_points: int = DEFAULT_CALIBRATION_POINTS,
    max_cycles: int = 500,
    tol: float = 1e-4,
    min_responses: int = DEFAULT_MIN_RESPONSES,
    priors: ItemPriors | None = ItemPriors(),  # noqa: B008 - frozen dataclass, immutable
    estimate_population: bool | None = None,
    start_items: pl.DataFrame | None = None,
    accelerate: Acceleration = "none",
    standard_errors: bool = False,
) -> Calibration:
    """Calibrate item parameters from sparse responses by Bock-Aitkin EM.

    Args:
        responses: polars frame with ``user_id``, ``item_id`` (ids of any dtype: integers,
            strings, categoricals; no nulls) and ``is_correct`` (bool or 0/1); one row per
            response.
        model: "2PL" (default), "1PL", "Rasch" or "3PL" (case-insensitive: "rasch", "3pl"
            are accepted too).
        fixed_items: anchored items: ``item_id``, ``a`` and ``b`` or ``d``, optional ``c``;
            its ``item_id`` must match the responses' (both integers or both text).
        quadrature_points: nodes of the theta grid on [-6, 6] (61 as in mirt; enough for
            ~50 responses per user, see the notes; users with hundreds of responses need more).
        max_cycles: EM cycle limit; tol: convergence threshold on parameter changes.
        min_responses: items with fewer responses are flagged.
        priors: item priors (:class:`ItemPriors`), or None for plain maximum likelihood.
        estimate_population: estimate theta's mean and SD; default: only with anchors.
        start_items: starting values (a warm start), e.g. last week's parameters: columns as
            ``fixed_items``; items not in it start from their proportion correct, items in it
            without responses are ignored. Without anchors they are first moved onto the
            scale where this population is N(0, 1) (:func:`~.em.align_scale`, two E-steps,
            counted in ``iterations``). The solution is the same as from a cold start (to
            within ``tol``), reached in fewer cycles.
        accelerate: ``"squarem"``: SQUAREM extrapolation of the EM (:func:`~.em._squarem`;
            the objective still never decreases), or ``"none"``: plain cycles.
        standard_errors: add ``a_se``, ``b_se``, ``c_se``, ``d_se`` to ``items`` (same units
            as the parameters; NaN for anchors and parameters the model does not estimate,
            0 for a Rasch slope) and ``ad_cov`` (cov(a, d)) from the observed information at
            the solution (:mod:`.standard_errors`; the method is in ``se_method``).

    Returns:
        :class:`Calibration`; parameters in logits (a per logit, b and d in logits, c a
        probability).

    Raises:
        ValueError: empty responses, null ids, unknown model, bad ``fixed_items`` (including
        item ids whose dtype cannot be matched with the responses').
    """
    item_model = get_model(model)
    if max_cycles < 1:
        raise ValueError("max_cycles must be at least 1")
    priors = priors if priors is not None else NO_PRIORS
    data = response_arrays(responses)
    n_users, n_items = data.user_ids.size, data.item_ids.size
    counts = sparse_counts(data.users, data.items, data.correct, n_users, n_items)
    n_resp = np.bincount(data.items, minlength=n_items).astype(np.int64)
    n_right = np.bincount(data.items, weights=data.correct, minlength=n_items)

    p_hat = np.clip((n_right + 0.5) / (n_resp + 1.0), 0.02, 0.98)
    a, d, c = item_model.start_values(p_hat, priors)
    # Anchors: items in fixed_items keep their parameters; extra anchors (no responses) are
    # appended to the output unchanged.
    fixed, extra_anchors = _apply_anchors(fixed_items, data.item_ids, a, d, c)
    free = ~fixed
    pop_free = bool(fixed.any()) if estimate_population is None else bool(estimate_population)
    nodes = grid(quadrature_points)
    warm_steps = 0
    if start_items is not None and start_items.height:
        _apply_start(start_items, data.item_ids, a, d, c, free, item_model)
        if not pop_free:
            moves = item_model.shared_slope or A in item_model.item_params
            a, d, warm_steps = align_scale(counts, a, d, c, nodes, slopes_move=moves)

    fit = run_em(
        counts,
        a,
        d,
        c,
        free,
        item_model,
        priors,
        nodes,
        estimate_population=pop_free,
        max_cycles=max_cycles,
        tol=tol,
        accelerate=accelerate,
        final_step=standard_errors,
    )
    items = _items_frame(
        item_model,
        data.item_ids,
        fit.a,
        fit.d,
        fit.c,
        n_resp,
        n_right,
        fixed,
        min_responses,
        extra_anchors,
    )
    se_method = se_ok = None
    if standard_errors:
        errors = item_standard_errors(
            counts,
            fit.a,
            fit.d,
            fit.c,
            free,
            item_model,
            priors,
            nodes,
            mean=fit.population_mean,
            sd=fit.population_sd,
            step=fit.final_step,
        )
        se_method, se_ok = errors.method, errors.positive_definite
        items = _with_errors(items, data.item_ids, errors)
    return Calibration(
        items=items,
        se_method=se_method,
        se_positive_definite=se_ok,
        log_likelihood=fit.log_likelihood,
        log_posterior=fit.log_posterior,
        converged=fit.converged,
        iterations=fit.iterations + warm_steps,
        model=item_model.name,
        log_likelihood_trace=fit.log_likelihood_trace,
        log_posterior_trace=fit.log_posterior_trace,
        population_mean=fit.population_mean,
        population_sd=fit.population_sd,
        quadrature_points=int(quadrature_points),
    )


def _with_errors(items: pl.DataFrame, item_ids: IdCodes, errors: ItemErrors) -> pl.DataFrame:
    """``items`` with the SE columns joined on item_id (extra anchors get NaN)."""
    se = pl.DataFrame(
        {
            "item_id": item_ids.decode(),
            "a_se": errors.a_se,
            "b_se": errors.b_se,
            "c_se": errors.c_se,
            "d_se": errors.d_se,
            "ad_cov": errors.cov_ad,
        },
        schema_overrides={"item_id": items.schema["item_id"]},
    )
    out = items.join(se, on="item_id", how="left")
    return out.with_columns(pl.col(SE_COLUMNS).fill_null(float("nan")))


#: (responses' column, anchors' column), as named in the errors.
_ANCHOR_NAMES = ("responses.item_id", "fixed_items.item_id")


def _apply_anchors(
    fixed_items: pl.DataFrame | None,
    item_ids: IdCodes,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
) -> tuple[np.ndarray, ExtraAnchors | None]:
    """Write the anchors' parameters into a, d, c (in place, float64 (n_items,)) for the
    items that have responses (``item_ids``: the responses' distinct items, by code).

    Returns the fixed mask bool (n_items,) and the anchors without responses (or None).
    """
    n_items = item_ids.size
    fixed = np.zeros(n_items, dtype=bool)
    if fixed_items is None or fixed_items.height == 0:
        return fixed, None
    fa, fd, fc, fids = parse_item_params(fixed_items)
    pos_c, seen = item_ids.find(fids, _ANCHOR_NAMES)
    fixed[pos_c[seen]] = True
    a[pos_c[seen]], d[pos_c[seen]], c[pos_c[seen]] = fa[seen], fd[seen], fc[seen]
    # A shared slope (1PL) starts at 1 for the free items whatever the anchors' slopes are:
    # start_values already set every slope to 1 and only anchored positions were overwritten.
    if (~seen).any():
        extra = IdCodes(fids.ids.filter(pl.Series(~seen))).cast_like(item_ids, _ANCHOR_NAMES)
        return fixed, (extra, fa[~seen], fd[~seen], fc[~seen])
    return fixed, None


_START_NAMES = ("responses.item_id", "start_items.item_id")


def _apply_start(
    start_items: pl.DataFrame,
    item_ids: IdCodes,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    free: np.ndarray,
    model: ItemModel,
) -> None:
    """Write the starting values of ``start_items`` into a, d, c (in place) for the free
    items that have responses, for the parameters ``model`` estimates (a Rasch slope stays
    1; a shared 1PL slope starts at the mean of the given slopes)."""
    sa, sd, sc, sids = parse_item_params(start_items)
    pos, seen = item_ids.find(sids, _START_NAMES)
    at = pos[seen]
    keep = free[at]
    at, sa, sd, sc = at[keep], sa[seen][keep], sd[seen][keep], sc[seen][keep]
    if at.size == 0:
        return
    d[at] = sd
    if model.shared_slope:
        a[free] = float(np.mean(sa))
    elif A in model.item_params:
        a[at] = sa
    if LOGIT_C in model.item_params:
        c[at] = np.clip(sc, 1e-6, 0.999)


def _flag_reasons(
    n_resp: np.ndarray,
    n_right: np.ndarray,
    fixed: np.ndarray,
    a: np.ndarray,
    min_responses: int,
) -> list[str | None]:
    """Per item: the flags joined by ";" (None = not flagged); anchored items never flag."""
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
    return reasons


def _items_frame(
    model: ItemModel,
    item_ids: IdCodes,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    n_resp: np.ndarray,
    n_right: np.ndarray,
    fixed: np.ndarray,
    min_responses: int,
    extra_anchors: ExtraAnchors | None,
) -> pl.DataFrame:
    """The ``items`` frame (``ITEM_SCHEMA``, item_id in the responses' dtype), sorted by
    item_id, extra anchors included."""
    reasons = _flag_reasons(n_resp, n_right, fixed, a, min_responses)
    _, b, _ = model.to_irt(a, d, c)
    schema = {**ITEM_SCHEMA, "item_id": item_ids.ids.dtype}
    frame = pl.DataFrame(
        {
            "item_id": item_ids.decode(),
            "a": a,
            "b": b,
            "c": c,
            "d": d,
            "n_responses": n_resp,
            "flagged": [r is not None for r in reasons],
            "flag_reason": reasons,
            "fixed": fixed,
        },
        schema=schema,
    )
    if extra_anchors is not None:
        ids, fa, fd, fc = extra_anchors
        n_extra = ids.len()
        extra = pl.DataFrame(
            {
                "item_id": ids,
                "a": fa,
                "b": difficulty(fa, fd),
                "c": fc,
                "d": fd,
                "n_responses": np.zeros(n_extra, dtype=np.int64),
                "flagged": np.zeros(n_extra, dtype=bool),
                "flag_reason": [None] * n_extra,
                "fixed": np.ones(n_extra, dtype=bool),
            },
            schema=schema,
        )
        frame = pl.concat([frame, extra]).sort("item_id")
    return frame


__all__ = ["ITEM_SCHEMA", "MODELS", "Calibration", "ItemPriors", "calibrate"]
