"""Differential item functioning (DIF) across groups of students: likelihood-ratio tests
with anchor items, on a multiple-group EM (no Dagster).

The anchored model (mirt's ``multipleGroup`` with ``invariance = c(anchors, 'free_means',
'free_var')``):

- the reference group's theta is N(0, 1) (this sets the scale); every focal group has its
  own mean and SD, estimated;
- anchor items (assumed free of DIF) have one set of parameters for all groups: they carry
  the link between the groups' scales;
- every other item has its own parameters in each group.

It is fitted by Bock-Aitkin EM: each group's E-step with its own population, the M-step
on the expected counts pooled over the groups for an anchor and per group otherwise
(an item of the model per (item, group) pair), then the focal groups' moments from their
posterior mass.

The test of item j compares the anchored model with one where j, too, has one set of
parameters for all groups: ``LR = 2 (logL_anchored - logL_j)``, chi-square with
``parameters x (groups - 1)`` df. Two ways to fit the constrained model:

- ``"profile"`` (default): only item j's shared parameters are re-estimated, the rest of the
  anchored model held at its estimates. Only the students who answered j change their
  likelihood, and their likelihood without j is kept from the anchored fit, so a test costs
  a few passes over j's responses. Holding the rest fixed can only lower logL_j, so the LR
  is at least the full one (slightly liberal); the tests measure the difference.
- ``"refit"``: the whole multiple-group EM again with j constrained (exact; one fit per item).

Without anchors (``anchors=None``, mirt's ``DIF(scheme = "add")`` from the fully
constrained model, the screening the weekly job runs when nobody has vouched for any item):
every item is an anchor in the base model, which is then a single calibration with the
focal groups' moments free; item j's test frees j in every tested group,
``LR = 2 (logL_j free - logL_base)``, with the rest held at the base model's estimates (the
profile again, so here the LR is at most the full refit's: slightly conservative). Each item
is tested with all the others as its anchors; a DIF item among them shifts the groups'
moments a little, which is why screens like this one are followed by a purified, anchored
test (``anchors`` = the items the screen cleared) before anyone acts on them.

Groups smaller than ``min_group_students`` are left out of the model, and an item is tested
only in the groups where it has at least ``min_item_responses`` responses (fewer groups
than 2: no test, NaN).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.stats import chi2

from seedtest_assets.core.irt.data import (
    IdCodes,
    ResponseArrays,
    encode,
    interleave,
    map_blocks,
    parse_item_params,
    response_arrays,
    sparse_counts,
)
from seedtest_assets.core.irt.em import EStep, e_step, m_step, run_em
from seedtest_assets.core.irt.models import (
    A,
    D,
    ItemModel,
    ItemPriors,
    get_model,
    log_prob_tables,
)
from seedtest_assets.core.irt.quadrature import DEFAULT_CALIBRATION_POINTS, grid, log_normal_weights
from seedtest_assets.core.irt.standard_errors import louis_item_blocks
from seedtest_assets.core.options import IrtModel

T = TypeVar("T")

#: The screen's base-model tolerance (``anchors=None``; see :func:`dif`).
SCREEN_BASE_TOL = 1e-3
#: The smallest SD of a group's theta the EM may reach (logits). A handful of students
#: who answered alike shrink their group's SD every cycle; below the nodes' spacing (0.2)
#: the prior sits on one node and the next SD is exactly 0 (then NaN).
MIN_GROUP_SD = 0.25
#: The score screen's full EM cycles after its moment-only ones (:meth:`_MultiGroup.fit_moments`).
SCREEN_BASE_CYCLES = 2

DIF_SCHEMA = {
    "item_id": pl.Int64(),
    "LR": pl.Float64(),
    "df": pl.Int64(),
    "p": pl.Float64(),
    "groups": pl.Int64(),
    "n_responses": pl.Int64(),
    "max_b_shift": pl.Float64(),
}


@dataclass
class DifResult:
    """:func:`dif`'s answer.

    - ``items``: per studied item (``DIF_SCHEMA``; item_id in the responses' dtype): LR, df,
      p, the groups it was tested in, its responses there, and the largest difference of its
      per-group b from the reference group's in the anchored model (logits).
    - ``groups``: per group in the model: group, n_students, mean, sd (the reference 0, 1).
    - ``log_likelihood``: the anchored model's; ``converged``, ``iterations`` of its EM (the
      score screen: its moment-only cycles converged; iterations counts those and the
      ``SCREEN_BASE_CYCLES`` full ones).
    - ``reference``: the reference group.
    - ``item_groups``: per tested item and group, the item's parameters when freed there
      (the screen: one step from the base; anchored: the model's own): item_id, group, a, b,
      c (the reference group's scale), for drawing its curve per group.
    """

    items: pl.DataFrame
    groups: pl.DataFrame
    log_likelihood: float
    converged: bool
    iterations: int
    reference: object
    item_groups: pl.DataFrame = field(default_factory=pl.DataFrame)


def dif(
    responses: pl.DataFrame,
    groups: pl.DataFrame,
    anchors: list[object] | pl.Series | None,
    *,
    model: IrtModel = "2PL",
    reference: object | None = None,
    method: Literal["profile", "refit", "score"] = "profile",
    priors: ItemPriors | None = ItemPriors(),  # noqa: B008 - frozen dataclass
    min_group_students: int = 100,
    min_item_responses: int = 50,
    quadrature_points: int = DEFAULT_CALIBRATION_POINTS,
    max_cycles: int = 500,
    tol: float = 1e-4,
    start_items: pl.DataFrame | None = None,
    hold_anchors: bool = False,
) -> DifResult:
    """LR tests of DIF for every non-anchor item (module doc).

    Args:
        responses: user_id, item_id, is_correct (one row per response).
        groups: user_id, group (one row per student; students without one are left out).
        anchors: item ids assumed free of DIF (at least one, with responses), or None: every
            item is tested with all the others as anchors (module doc, ``scheme = "add"``;
            ``method`` is then always the profile).
        model: the item model ("2PL", "1PL", "Rasch", "3PL").
        reference: the group whose theta is N(0, 1); default the largest.
        method: "profile" or "refit" (module doc); with ``anchors=None`` also "score": score
            tests at the base model instead of LRs (:meth:`_MultiGroup.score_screen`; no fit
            per item: what the weekly job runs).
        min_group_students, min_item_responses: size limits (module doc).
        start_items: item_id, a, d or b, c of a calibration of these students together on
            an N(0, 1) scale (the week's, say), for the start; every item needs a row, else
            the pooled calibration runs as without it.
        hold_anchors: keep the anchors at that start (rescaled to the reference group)
            instead of re-estimating them with the groups: calibrated anchors, so the EM
            moves only the groups' moments and the studied items (the weekly re-test of
            the screen's flags, whose anchors the week's calibration of all students
            already estimated). Ignored without anchors (the screen holds every item).
    """
    item_model = get_model(model)
    priors = priors if priors is not None else ItemPriors(None, None, None)
    if "user_id" not in groups.columns or "group" not in groups.columns:
        raise ValueError("groups needs columns user_id and group")
    joined = responses.join(groups.select("user_id", "group"), on="user_id", how="inner")
    sizes = joined.group_by("group").agg(n=pl.col("user_id").n_unique())
    sizes = sizes.filter(pl.col("n") >= min_group_students).sort("n", "group", descending=True)
    if sizes.height < 2:
        raise ValueError(
            f"DIF needs at least 2 groups of >= {min_group_students} students, found {sizes.height}"
        )
    names = sizes["group"].to_list()
    if reference is None:
        reference = names[0]
    if reference not in names:
        raise ValueError(f"reference group {reference!r} has fewer than {min_group_students}")
    names = [reference, *[g for g in names if g != reference]]
    joined = joined.filter(pl.col("group").is_in(names))
    data = response_arrays(joined.select("user_id", "item_id", "is_correct"))
    group_of_user = _group_codes(joined, data, names)
    n_items, n_groups = data.item_ids.size, len(names)
    screen = anchors is None
    anchor_ids = (
        pl.Series([], dtype=data.item_ids.ids.dtype)
        if anchors is None
        else (pl.Series(list(anchors)) if not isinstance(anchors, pl.Series) else anchors)
    )
    is_anchor = np.zeros(n_items, bool) | screen
    if anchor_ids.len():
        _, anchor_codes = IdCodes.encode(anchor_ids, "anchors")
        pos, known = data.item_ids.find(anchor_codes, ("responses.item_id", "anchors"))
        is_anchor[pos[known]] = True
    if not is_anchor.any():
        raise ValueError("DIF needs at least one anchor item with responses")
    grp = group_of_user[data.users]
    fit = _MultiGroup(
        data.users,
        data.items,
        data.correct,
        grp,
        is_anchor,
        n_groups,
        item_model,
        priors,
        grid(quadrature_points),
        hold_anchors=hold_anchors and not screen,
    )
    # The screen's base model needs less: an item's LR moves by ~n delta^2 I (0.01 for 500
    # responses) when the base is off by delta = 1e-3, and the plain cycles crawl at 5M.
    base_tol = max(tol, SCREEN_BASE_TOL) if screen else tol
    start = fit.pooled_start(tol, _known(start_items, data))
    if screen and method == "score":
        # The groups' moments by E-steps alone, then a few full cycles: with the items held
        # at the pooled fit, 6.95% of 2,000 clean items were rejected at 5% (5M responses,
        # 5 x 3,000 students); one cycle gave 5.6%, two 5.4%, the fit to tol 1e-3 5.4%.
        moments = fit.fit_moments(start, max_cycles, tol)
        state = fit.fit(SCREEN_BASE_CYCLES, base_tol, moments)
        # A fixed number of full cycles by design: converged means the moments did.
        state = replace(
            state, converged=moments.converged, iterations=moments.iterations + state.iterations
        )
    else:
        state = fit.fit(max_cycles, base_tol, start)
    # Per item and group: responses, and the per-group b in the anchored model.
    counts = np.zeros((n_items, n_groups), np.int64)
    np.add.at(counts, (data.items, grp), 1)
    rows = []
    curves: list[tuple[int, object, float, float, float]] = []
    screened = None
    if screen:
        tested_all = counts >= min_item_responses
        screened = (
            fit.score_screen(state, tested_all)
            if method == "score"
            else fit.screen_all(state, tested_all)
        )
    for j in (np.arange(n_items) if screen else np.flatnonzero(~is_anchor)).tolist():
        tested = counts[j] >= min_item_responses
        k = int(tested.sum())
        n_par = len(item_model.item_params)
        if k < 2:
            rows.append((j, float("nan"), 0, float("nan"), k, int(counts[j].sum()), float("nan")))
            continue
        if screened is not None:
            lr, (fa, fd, fc) = screened[0][j], (arr[j][tested] for arr in screened[1:])
            b = -fd / fa
            for g, ga, gb, gc in zip(np.flatnonzero(tested), fa, b, fc, strict=True):
                curves.append((j, names[g], float(ga), float(gb), float(gc)))
            shift = float(np.max(np.abs(b - b[0]))) if tested[0] else float(np.ptp(b))
            df = n_par * (k - 1)
            rows.append((j, lr, df, float("nan"), k, int(counts[j][tested].sum()), shift))
            continue
        if method == "profile":
            lr = fit.profile_lr(state, j, tested)
        elif method == "refit":
            lr = fit.refit_lr(state, j, tested, max_cycles, tol)
        else:
            raise ValueError(f"method must be 'profile' or 'refit', got {method!r}")
        df = n_par * (k - 1)
        v = fit.virtual(j, np.flatnonzero(tested))
        b = -state.d[v] / state.a[v]
        for g, vg, gb in zip(np.flatnonzero(tested), v, b, strict=True):
            curves.append((j, names[g], float(state.a[vg]), float(gb), float(state.c[vg])))
        shift = float(np.max(np.abs(b - b[0]))) if tested[0] else float(np.ptp(b))
        rows.append((j, lr, df, float("nan"), k, int(counts[j][tested].sum()), shift))
    # p in one call (per item, scipy's overhead was 0.12 s for 2,000 items).
    lrs = np.array([r[1] for r in rows], np.float64)
    dfs = np.array([r[2] for r in rows], np.float64)
    with np.errstate(invalid="ignore"):
        pvals = np.where(dfs >= 1, chi2.sf(np.maximum(lrs, 0.0), np.maximum(dfs, 1)), np.nan)
    codes = np.array([r[0] for r in rows], np.int64)
    items = pl.DataFrame(
        {
            "item_id": data.item_ids.ids.gather(codes) if codes.size else data.item_ids.ids.head(0),
            "LR": [r[1] for r in rows],
            "df": [r[2] for r in rows],
            "p": pvals,
            "groups": [r[4] for r in rows],
            "n_responses": [r[5] for r in rows],
            "max_b_shift": [r[6] for r in rows],
        },
        schema={**DIF_SCHEMA, "item_id": data.item_ids.ids.dtype},
    )
    n_students = np.bincount(group_of_user, minlength=n_groups)
    group_frame = pl.DataFrame(
        {
            "group": names,
            "n_students": n_students,
            "mean": state.mean,
            "sd": state.sd,
        }
    )
    codes_c = np.array([r[0] for r in curves], np.int64)
    item_groups = pl.DataFrame(
        {
            "item_id": data.item_ids.ids.gather(codes_c)
            if codes_c.size
            else data.item_ids.ids.head(0),
            "group": pl.Series([r[1] for r in curves], dtype=pl.Series(names).dtype),
            "a": [r[2] for r in curves],
            "b": [r[3] for r in curves],
            "c": [r[4] for r in curves],
        },
        schema_overrides={"a": pl.Float64, "b": pl.Float64, "c": pl.Float64},
    )
    return DifResult(
        items,
        group_frame,
        state.log_likelihood,
        state.converged,
        state.iterations,
        reference,
        item_groups,
    )


def _moments(
    mass: np.ndarray, nodes: np.ndarray, floor: float = MIN_GROUP_SD
) -> tuple[float, float]:
    """Mean and SD (logits) of theta under the posterior ``mass`` per node (Q,), the SD at
    least ``floor``: a group's M-step for its normal distribution."""
    m = float(mass @ nodes / mass.sum())
    return m, max(float(np.sqrt(mass @ (nodes - m) ** 2 / mass.sum())), floor)


def _solve_rows(info: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``info^-1 score`` for a batch: info (r, G, p, p), score (r, G, p) -> (r, G, p); NaN
    where a matrix is singular (one singular matrix would fail the whole batched solve)."""
    try:
        return np.linalg.solve(info, score[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full(score.shape, np.nan)
        for idx in np.ndindex(*score.shape[:2]):
            with contextlib.suppress(np.linalg.LinAlgError):
                out[idx] = np.linalg.solve(info[idx], score[idx])
        return out


def _known(
    start_items: pl.DataFrame | None, data: ResponseArrays
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``start_items``' (a, d, c) per item code of ``data``, or None (absent or incomplete)."""
    if start_items is None:
        return None
    a, d, c, bank = parse_item_params(start_items, "start_items")
    pos, known = bank.find(data.item_ids, ("start_items.item_id", "responses.item_id"))
    if not known.all():
        return None
    return a[pos], d[pos], c[pos]


def _group_codes(joined: pl.DataFrame, data: ResponseArrays, names: list[object]) -> np.ndarray:
    """Group code (index in ``names``) per user code: int64 (n_users,)."""
    # Sorted by user_id as IdCodes sorts its distinct ids, so row k is distinct id k.
    per_user = joined.select("user_id", "group").unique("user_id").sort("user_id")
    _, distinct = IdCodes.encode(per_user["user_id"], "groups")
    codes, _ = data.user_ids.find(distinct, ("responses.user_id", "groups.user_id"))
    lookup = {g: i for i, g in enumerate(names)}
    out = np.zeros(data.user_ids.size, np.int64)
    out[codes] = np.array([lookup[g] for g in per_user["group"].to_list()], np.int64)
    return out


@dataclass
class _Fit:
    a: np.ndarray
    d: np.ndarray
    c: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    log_likelihood: float
    converged: bool
    iterations: int


class _MultiGroup:
    """The anchored multiple-group model: model item ``v`` is an anchor item (all groups) or
    an (item, group) pair; one sparse count matrix per group over the model items."""

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        correct: np.ndarray,
        grp: np.ndarray,
        is_anchor: np.ndarray,
        n_groups: int,
        model: ItemModel,
        priors: ItemPriors,
        nodes: np.ndarray,
        hold_anchors: bool = False,
    ) -> None:
        """Codes per response (users, items int64 (n,), correct float64 (n,), grp int64
        (n,)), anchors bool (n_items,), the model, priors and nodes (Q,); ``hold_anchors``:
        the EM leaves the anchors at their start."""
        self.model, self.priors, self.nodes, self.n_groups = model, priors, nodes, n_groups
        self.is_anchor = is_anchor
        self.hold_anchors = hold_anchors
        n_items = is_anchor.size
        # Model-item index: anchors first (one each), then (item, group) pairs.
        self.anchor_index = np.cumsum(is_anchor) - 1
        n_anchor = int(is_anchor.sum())
        free_rank = np.cumsum(~is_anchor) - 1
        self.free_base = n_anchor + free_rank * n_groups
        self.n_virtual = n_anchor + int((~is_anchor).sum()) * n_groups
        self.item_of_virtual = np.empty(self.n_virtual, np.int64)
        self.item_of_virtual[self.anchor_index[is_anchor]] = np.flatnonzero(is_anchor)
        for g in range(n_groups):
            self.item_of_virtual[self.free_base[~is_anchor] + g] = np.flatnonzero(~is_anchor)
        v = np.where(is_anchor[items], self.anchor_index[items], self.free_base[items] + grp)
        self.users, self.items, self.correct, self.v, self.grp = users, items, correct, v, grp
        self.counts = []
        self.counts_items = []
        self.user_codes = []
        # One sort by (group, user) instead of a unique and a sort per group: each group's
        # rows are then a slice, its users in order (local codes by a running count).
        by_group = np.argsort(grp * (int(users.max(initial=0)) + 1) + users, kind="stable")
        bounds_g = np.searchsorted(grp[by_group], np.arange(n_groups + 1))
        screen = bool(is_anchor.all())  # model items are the items: one matrix serves both
        for g in range(n_groups):
            rows = by_group[bounds_g[g] : bounds_g[g + 1]]
            codes, local = encode(users[rows])  # in order: a running count
            per_items = sparse_counts(local, items[rows], correct[rows], codes.size, n_items)
            self.counts_items.append(per_items)
            self.counts.append(
                per_items
                if screen
                else sparse_counts(local, v[rows], correct[rows], codes.size, self.n_virtual)
            )
            self.user_codes.append(codes)
        self.n_items = n_items
        self._loglik_of: _Fit | None = None
        self._loglik = np.empty((0, nodes.size))
        self._log_p = self._log_q = np.empty((0, nodes.size))
        self._rows_of_items: list[np.ndarray] | None = None
        self._rows_asked = 0

    #: Items asked for by a scan each, before one sort serves the rest.
    ROW_SCANS = 16

    def rows_of(self, j: int) -> np.ndarray:
        """The responses of item j, in row order. The first :data:`ROW_SCANS` items by a
        scan each (the weekly re-test asks for the few flagged items: a sort of 1.5M
        responses took longer than their scans); then one sort for all items (a screen
        of thousands)."""
        if self._rows_of_items is None and self._rows_asked < self.ROW_SCANS:
            self._rows_asked += 1
            return np.flatnonzero(self.items == j)
        if self._rows_of_items is None:
            order = np.argsort(self.items, kind="stable")
            bounds = np.searchsorted(self.items[order], np.arange(self.n_items + 1))
            self._rows_of_items = [order[bounds[k] : bounds[k + 1]] for k in range(self.n_items)]
        return self._rows_of_items[j]

    def virtual(self, j: int, groups: np.ndarray) -> np.ndarray:
        """Model items of item j in ``groups`` (an anchor: the same one for all)."""
        if self.is_anchor[j]:
            return np.full(groups.size, self.anchor_index[j])
        return self.free_base[j] + groups

    def pooled_start(
        self, tol: float, known: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> _Fit:
        """Starting values for the anchored model: one calibration of all groups together
        (SQUAREM), copied to every group, rescaled so that the reference group is N(0, 1),
        and each focal group's mean and SD from its posterior under it. From a cold start
        the EM crawls along the groups' means (hundreds of cycles at 5M responses).
        ``known``: that calibration's (a, d, c) per item code already (the week's stored
        parameters): not fitted again."""
        if known is not None:
            return self._rescaled(*known, iterations=0)
        n = self.n_items
        order = np.argsort(self.users, kind="stable")
        counts = sparse_counts(
            self.users[order],
            self.items[order],
            self.correct[order],
            int(self.users.max()) + 1,
            n,
        )
        free = np.ones(n, bool)
        n_resp = np.bincount(self.items, minlength=n)
        n_right = np.bincount(self.items, weights=self.correct, minlength=n)
        p_hat = np.clip((n_right + 0.5) / (n_resp + 1.0), 0.02, 0.98)
        start = self.model.start_values(p_hat, self.priors)
        pooled = run_em(
            counts,
            *start,
            free,
            self.model,
            self.priors,
            self.nodes,
            estimate_population=False,
            max_cycles=500,
            tol=tol,
            accelerate="squarem",
        )
        return self._rescaled(pooled.a, pooled.d, pooled.c, iterations=pooled.iterations)

    def _rescaled(self, a: np.ndarray, d: np.ndarray, c: np.ndarray, iterations: int) -> _Fit:
        """Pooled parameters (n_items,) copied to every group, on the reference group's
        N(0, 1) scale, with each group's moments from its posterior."""
        mean, sd = np.zeros(self.n_groups), np.ones(self.n_groups)
        for g in range(self.n_groups):
            step = e_step(
                self.counts_items[g],
                a,
                d,
                c,
                self.nodes,
                log_normal_weights(self.nodes),
            )
            mean[g], sd[g] = _moments(step.mass, self.nodes, floor=0.0)
        # The reference group's scale: theta' = (theta - m_ref) / s_ref.
        m_ref, s_ref = mean[0], sd[0]
        a_item = a * s_ref
        d_item = d + a * m_ref
        iv = self.item_of_virtual
        return _Fit(
            a_item[iv],
            d_item[iv],
            c[iv].copy(),
            (mean - m_ref) / s_ref,
            sd / s_ref,
            float("nan"),
            False,
            iterations,
        )

    def fit(
        self,
        max_cycles: int,
        tol: float,
        start: _Fit,
        constrain: np.ndarray | None = None,
    ) -> _Fit:
        """The anchored model; ``constrain``: model items (one item's copies in some
        groups) that share one set of parameters too."""
        a, d, c = start.a.copy(), start.d.copy(), start.c.copy()
        mean, sd = start.mean.copy(), start.sd.copy()
        pool = constrain
        free = np.ones(self.n_virtual, bool)
        if self.hold_anchors:  # model items 0 .. n_anchor - 1 are the anchors
            free[: int(self.is_anchor.sum())] = False
        ll = -np.inf
        converged = False
        cycles = 0
        while cycles < max_cycles:
            cycles += 1
            r1 = np.zeros((self.n_virtual, self.nodes.size))
            nn = np.zeros_like(r1)
            ll = 0.0
            new_mean, new_sd = mean.copy(), sd.copy()
            steps = self._e_steps(a, d, c, mean, sd)
            for g, step in enumerate(steps):
                r1 += step.r1
                nn += step.nn
                ll += step.log_likelihood
                if g > 0:
                    new_mean[g], new_sd[g] = _moments(step.mass, self.nodes)
            if pool is not None:
                r1[pool] = r1[pool].sum(axis=0)
                nn[pool] = nn[pool].sum(axis=0)
            na, nd, nc = m_step(a, d, c, r1, nn, self.nodes, free, self.model, self.priors)
            if pool is not None:  # every copy got the same pooled counts: keep them equal
                na[pool], nd[pool], nc[pool] = na[pool[0]], nd[pool[0]], nc[pool[0]]
            change = max(
                float(np.max(np.abs(na - a))),
                float(np.max(np.abs(nd - d))),
                float(np.max(np.abs(nc - c))),
                float(np.max(np.abs(new_mean - mean))),
                float(np.max(np.abs(new_sd - sd))),
            )
            a, d, c, mean, sd = na, nd, nc, new_mean, new_sd
            if change < tol:
                converged = True
                break
        ll = self.log_likelihood(a, d, c, mean, sd)
        return _Fit(a, d, c, mean, sd, ll, converged, cycles)

    def fit_moments(self, start: _Fit, max_cycles: int, tol: float) -> _Fit:
        """The score screen's base: the items held at ``start`` (the pooled calibration,
        every item an anchor), only the focal groups' means and SDs re-estimated, by EM
        cycles of E-steps alone. The score tests take out, per item, what moving its shared
        parameters would explain (:meth:`score_screen`), so the base needs consistent item
        parameters, not their multiple-group optimum, to first order; the cycles move two
        numbers per group and cost one E-step each, where the full fit to tol 1e-3 moves
        every item (60% of the weekly DIF's time at 5M responses). To second order the
        items' distance from the sample's optimum still shows (6.95% rejected at 5% without
        DIF), so :func:`dif` follows with ``SCREEN_BASE_CYCLES`` full cycles (5.4%)."""
        log_p, log_q = log_prob_tables(start.a, start.d, start.c, self.nodes)
        table = interleave(log_q, log_p)
        mean, sd = start.mean.copy(), start.sd.copy()
        converged = False
        cycles = 0
        while cycles < max_cycles:
            cycles += 1
            new_mean, new_sd = mean.copy(), sd.copy()
            masses = self._masses(table, mean, sd)
            for g, mass in enumerate(masses, start=1):
                new_mean[g], new_sd[g] = _moments(mass, self.nodes)
            change = max(float(np.max(np.abs(new_mean - mean))), float(np.max(np.abs(new_sd - sd))))
            mean, sd = new_mean, new_sd
            if change < tol:
                converged = True
                break
        ll = self.log_likelihood(start.a, start.d, start.c, mean, sd)
        return _Fit(start.a, start.d, start.c, mean, sd, ll, converged, cycles)

    def log_likelihood(
        self, a: np.ndarray, d: np.ndarray, c: np.ndarray, mean: np.ndarray, sd: np.ndarray
    ) -> float:
        """The model's marginal log-likelihood (nats) summed over the groups."""
        log_p, log_q = log_prob_tables(a, d, c, self.nodes)
        table = interleave(log_q, log_p)
        return float(
            sum(
                self._per_group(
                    lambda g: self.counts[g].posterior(
                        table, log_normal_weights(self.nodes, mean[g], sd[g]), expected=False
                    )[0]
                )
            )
        )

    def _e_steps(
        self, a: np.ndarray, d: np.ndarray, c: np.ndarray, mean: np.ndarray, sd: np.ndarray
    ) -> list[EStep]:
        """Every group's E-step at these items (virtual) and moments."""

        def one(g: int) -> EStep:
            w = log_normal_weights(self.nodes, mean[g], sd[g])
            return e_step(self.counts[g], a, d, c, self.nodes, w)

        return self._per_group(one)

    def _masses(self, table: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> list[np.ndarray]:
        """Each focal group's (groups 1 .. G-1) posterior mass per node at this table."""

        def one(g: int) -> np.ndarray:
            w = log_normal_weights(self.nodes, mean[g], sd[g])
            _, _, mass = self.counts[g].posterior(table, w, mass_only=True)
            assert mass is not None  # expected (the default) returns it
            return mass

        return self._per_group(one, first=1)

    def _per_group(self, work: Callable[[int], T], first: int = 0) -> list[T]:
        """``[work(g) for g in range(first, n_groups)]``, the groups on two threads: a group
        of the weekly screen (at most 3,000 students) is one block of students, which alone
        keeps only one core busy."""
        return map_blocks(work, range(first, self.n_groups))

    def refit_lr(
        self, state: _Fit, j: int, tested: np.ndarray, max_cycles: int, tol: float
    ) -> float:
        """LR by refitting the whole model with item j constrained (exact)."""
        start = self._constrained_start(state, j, tested)
        pool = self.free_base[j] + np.flatnonzero(tested)
        constrained = self.fit(max_cycles, tol, start, constrain=pool)
        return 2.0 * (state.log_likelihood - constrained.log_likelihood)

    def _constrained_start(self, state: _Fit, j: int, tested: np.ndarray) -> _Fit:
        """The anchored fit with item j's copies in the ``tested`` groups set to their
        response-weighted mean (the constrained fits' start)."""
        pool = self.free_base[j] + np.flatnonzero(tested)
        a, d, c = state.a.copy(), state.d.copy(), state.c.copy()
        w = np.bincount(self.v, minlength=self.n_virtual)[pool].astype(float)
        for arr in (a, d, c):
            arr[pool] = float(np.sum(arr[pool] * w) / max(w.sum(), 1.0))
        return _Fit(a, d, c, state.mean, state.sd, state.log_likelihood, False, 0)

    def profile_lr(self, state: _Fit, j: int, tested: np.ndarray) -> float:
        """LR with only item j's shared parameters re-estimated (module doc)."""
        one = _ItemLikelihood(self, state, j)
        G = self.n_groups
        # Rows 0..G-1: j's anchored parameters in each group; row G: the shared set.
        v = self.virtual(j, np.arange(G))
        a = np.append(state.a[v], 0.0)
        d = np.append(state.d[v], 0.0)
        c = np.append(state.c[v], 0.0)
        ll_free, _ = one.loglik(a, d, c, one.grp)
        start = self._constrained_start(state, j, tested)
        a[G], d[G], c[G] = start.a[v[0]], start.d[v[0]], start.c[v[0]]
        row = np.where(tested[one.grp], G, one.grp)
        a, d, c = one.fit_rows(a, d, c, row, np.arange(G + 1) == G)
        ll_con, _ = one.loglik(a, d, c, row)
        return 2.0 * (ll_free - ll_con)

    def score_screen(
        self, state: _Fit, tested: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The screen by score (Lagrange multiplier) tests instead of LRs: no fit of the
        freed items at all, only each group's E-step at the base model.

        For item j and tested group g, ``s_g`` is the gradient of group g's log-likelihood in
        j's parameters at the base fit (Fisher's identity: from the E-step's expected counts)
        and ``I_g`` their observed information, others held (Louis' identity per item block,
        :func:`~.standard_errors.louis_item_blocks`). ``LM = sum_g s_g' I_g^-1 s_g -
        S' (sum_g I_g)^-1 S`` with ``S = sum_g s_g``: asymptotically the profile LR of
        :meth:`screen_all` (chi-square, the same df); the last term removes what moving the
        shared parameters would explain, so a base fit stopped at ``SCREEN_BASE_TOL`` does not
        inflate it. The per-group parameters returned are one Newton step from the base
        (``theta + I_g^-1 s_g``), for the curves and ``max_b_shift``; where that step would
        halve or double the slope (a small group), the d-only step with the slope held.

        Returns:
            as :meth:`screen_all`.
        """
        G, n_items = self.n_groups, self.n_items
        none = ItemPriors(None, None, None)
        cols = list(self.model.item_params)
        a0, d0, c0 = state.a[:n_items], state.d[:n_items], state.c[:n_items]
        score = np.zeros((G, n_items, len(cols)))
        info = np.zeros((G, n_items, len(cols), len(cols)))

        def group_terms(g: int) -> tuple[np.ndarray, np.ndarray]:
            w = log_normal_weights(self.nodes, state.mean[g], state.sd[g])
            step = e_step(self.counts[g], a0, d0, c0, self.nodes, w)
            grad, _ = self.model.gradient_information(
                a0, d0, c0, step.r1, step.nn, self.nodes, none
            )
            block = louis_item_blocks(
                self.counts[g],
                a0,
                d0,
                c0,
                self.model,
                none,
                self.nodes,
                float(state.mean[g]),
                float(state.sd[g]),
                step=step,
            )
            return grad[:, cols], block[:, cols][:, :, cols]

        for g, (grad_g, info_g) in enumerate(self._per_group(group_terms)):
            score[g], info[g] = grad_g, info_g
        ridge = 1e-9 * np.eye(len(cols))
        lm = np.full(n_items, np.nan)
        a = np.repeat(a0[:, None], G, axis=1)
        d = np.repeat(d0[:, None], G, axis=1)
        c = np.repeat(c0[:, None], G, axis=1)
        rows = np.flatnonzero(tested.sum(axis=1) >= 2)
        if not rows.size:
            return lm, a, d, c
        # All items at once (a loop over 2,000 items took 0.1 s): a group where an item is
        # not tested gets score 0 and identity information, so it adds nothing.
        m = tested[rows]  # (r, G)
        mm = m[:, :, None, None]
        s_g = score[:, rows].transpose(1, 0, 2) * m[:, :, None]  # (r, G, p)
        i_g = np.where(mm, info[:, rows].transpose(1, 0, 2, 3) + ridge, np.eye(len(cols)))
        i_sum = np.where(mm, i_g, 0.0).sum(axis=1)  # (r, p, p)
        step_g, total = _solve_rows(i_g, s_g), _solve_rows(i_sum[:, None], s_g.sum(axis=1)[:, None])
        total = total[:, 0]
        lm[rows] = np.sum(s_g * step_g, axis=(1, 2)) - np.sum(s_g.sum(axis=1) * total, axis=1)
        moved = np.zeros((rows.size, G, 3))
        moved[:, :, cols] = step_g
        a_new = a0[rows, None] + moved[:, :, A]
        # One full step can overshoot on a small group (a near 0 makes b = -d/a explode:
        # b shifts of 12 logits on 30 responses were seen); there, the d-only step (uniform
        # DIF, slope held), which is what the curves and b shift then show.
        wild = (a_new < 0.5 * a0[rows, None]) | (a_new > 2.0 * a0[rows, None])
        k = cols.index(D)
        d_only = score[:, rows, k].T / np.maximum(info[:, rows, k, k].T, 1e-9)
        ok = m & np.isfinite(step_g).all(axis=2)
        a[rows] = np.where(ok, np.where(wild, a0[rows, None], a_new), a[rows])
        d[rows] = np.where(ok, d0[rows, None] + np.where(wild, d_only, moved[:, :, D]), d[rows])
        return lm, a, d, c

    def screen_all(
        self, state: _Fit, tested: np.ndarray, max_cycles: int = 200, tol: float = 1e-5
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The screen's LR (``anchors=None``, module doc) for every item at once: item j freed
        in the groups where it is tested, the rest held at ``state``. The items' problems are
        independent (each frees only its own parameters), so they run as one batched EM over
        the (student, item) pairs instead of a Python loop over items.

        Args:
            state: the base fit (every item an anchor); tested: bool (n_items, G), the
                groups each item is freed in (items with fewer than 2 are not tested).

        Returns:
            (LR (n_items,), NaN where not tested; a, d, c (n_items, G) of the freed items,
            the base values where not freed).
        """
        G, Q = self.n_groups, self.nodes.size
        n_items = self.n_items
        # One row per (student, item) pair: its right and wrong counts (repeats summed).
        key = self.users * n_items + self.items
        pairs, inverse = np.unique(key, return_inverse=True)
        right = np.bincount(inverse, weights=self.correct, minlength=pairs.size)
        total = np.bincount(inverse, minlength=pairs.size).astype(float)
        wrong = total - right
        p_user, p_item = pairs // n_items, pairs % n_items
        p_grp = np.empty(pairs.size, np.int64)
        p_grp[inverse] = self.grp
        # Each pair's student log-likelihood without the pair's item, prior included.
        log_p, log_q = log_prob_tables(state.a, state.d, state.c, self.nodes)
        table = interleave(log_q, log_p)
        full = np.zeros((int(self.users.max()) + 1, Q))
        for g in range(G):
            full[self.user_codes[g]] = self.counts[g].loglik(table)
        log_w = np.stack(
            [log_normal_weights(self.nodes, state.mean[g], state.sd[g]) for g in range(G)]
        )
        # The base log-likelihood of a pair is its student's (the same for all their pairs).
        student = full + log_w[group_of_code(self, full.shape[0])]
        ll_base = _logsumexp_rows(student)[p_user]
        base = student[p_user]
        base -= right[:, None] * log_p[p_item] + wrong[:, None] * log_q[p_item]
        del full, student
        # Slots: (item, group) copies; freed only where tested and the item has >= 2 groups.
        testable = tested.sum(axis=1) >= 2
        free = (tested & testable[:, None]).ravel()
        slot = p_item * G + p_grp
        a = np.repeat(state.a[:n_items], G)
        d = np.repeat(state.d[:n_items], G)
        c = np.repeat(state.c[:n_items], G)
        n_slots = n_items * G
        single = total == 1.0
        # A single response: one gather per pair (repeats are summed in `own`).
        row = 2 * slot + np.where(single, right, 0.0).astype(np.int64)

        def own(table: np.ndarray, lp: np.ndarray, lq: np.ndarray, k: np.ndarray) -> np.ndarray:
            """The pairs ``k``'s log-likelihood at their slots' parameters: (len(k), Q)."""
            out = table[row[k]]
            many = ~single[k]
            if many.any():
                m = k[many]
                out[many] = right[m, None] * lp[slot[m]] + wrong[m, None] * lq[slot[m]]
            return out

        # Items still moving: each iteration only touches their pairs (most items settle in
        # a few cycles, a few take 20).
        active = free.reshape(n_items, G).any(axis=1)
        for _ in range(max_cycles):
            k = np.flatnonzero(active[p_item] & free[slot])
            if k.size == 0:
                break
            lp, lq = log_prob_tables(a, d, c, self.nodes)
            post = base[k] + own(interleave(lq, lp), lp, lq, k)
            post -= post.max(axis=1, keepdims=True)
            np.exp(post, out=post)
            post /= post.sum(axis=1, keepdims=True)
            gather = sp.csr_array(
                (np.ones(k.size), (slot[k], np.arange(k.size))), shape=(n_slots, k.size)
            )
            nn = gather @ (post * total[k, None])
            r1 = gather @ (post * right[k, None])
            step = free & np.repeat(active, G)
            na, nd, nc = m_step(a, d, c, r1, nn, self.nodes, step, self.model, self.priors)
            moved = np.maximum.reduce([np.abs(na - a), np.abs(nd - d), np.abs(nc - c)])
            a, d, c = na, nd, nc
            active &= moved.reshape(n_items, G).max(axis=1) >= tol
        lp, lq = log_prob_tables(a, d, c, self.nodes)
        everyone = np.arange(pairs.size)
        ll_free = _logsumexp_rows(base + own(interleave(lq, lp), lp, lq, everyone))
        lr = 2.0 * np.bincount(p_item, weights=ll_free - ll_base, minlength=n_items)
        lr[~testable] = np.nan
        return lr, a.reshape(n_items, G), d.reshape(n_items, G), c.reshape(n_items, G)

    def _likelihood_without(self, state: _Fit, users: np.ndarray, j: int) -> np.ndarray:
        """Log-likelihood at the nodes of ``users`` (codes, sorted) from all their responses
        except those to item j: float64 (len(users), Q). The whole model's per-student
        log-likelihood is computed once per anchored fit; each item then subtracts its own
        responses, so a test costs O(its responses), not a pass over all of them."""
        if self._loglik_of is not state:
            log_p, log_q = log_prob_tables(state.a, state.d, state.c, self.nodes)
            table = interleave(log_q, log_p)
            full = np.zeros((int(self.users.max()) + 1, self.nodes.size))
            for g in range(self.n_groups):
                full[self.user_codes[g]] = self.counts[g].loglik(table)
            self._loglik, self._loglik_of = full, state
            self._log_p, self._log_q = log_p, log_q
        mine = self.rows_of(j)
        out = self._loglik[users].copy()
        u = np.searchsorted(users, self.users[mine])
        v = self.v[mine]
        own = np.where(self.correct[mine][:, None] > 0, self._log_p[v], self._log_q[v])
        np.subtract.at(out, u, own)
        return out


def group_of_code(mg: _MultiGroup, n_codes: int) -> np.ndarray:
    """The group of every user code (int64 (n_codes,); 0 for codes without responses)."""
    out = np.zeros(n_codes, np.int64)
    for g, codes in enumerate(mg.user_codes):
        out[codes] = g
    return out


def _logsumexp_rows(x: np.ndarray) -> np.ndarray:
    """log sum exp over each row of ``x`` (n, Q): (n,)."""
    top = x.max(axis=1)
    return np.log(np.exp(x - top[:, None]).sum(axis=1)) + top


class _ItemLikelihood:
    """The students who answered item j, with everything but j held at a fit: their
    log-likelihood as a function of j's parameters, which take one of a few values ("rows":
    per group, or shared) per response. The tables are computed per row, not per response."""

    def __init__(self, mg: _MultiGroup, state: _Fit, j: int) -> None:
        mine = mg.rows_of(j)
        mine = mine[np.argsort(mg.users[mine], kind="stable")]
        users, self.starts = np.unique(mg.users[mine], return_index=True)
        counts = np.diff(np.append(self.starts, mine.size))
        self.resp_user = np.repeat(np.arange(users.size), counts)
        self.x = mg.correct[mine]
        self.grp = mg.grp[mine]
        self.nodes, self.model, self.priors = mg.nodes, mg.model, mg.priors
        log_w = np.stack(
            [log_normal_weights(mg.nodes, state.mean[g], state.sd[g]) for g in range(mg.n_groups)]
        )
        self.base = mg._likelihood_without(state, users, j) + log_w[self.grp[self.starts]]

    def loglik(
        self, a: np.ndarray, d: np.ndarray, c: np.ndarray, row: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Log-likelihood (nats) of these students with response k at row ``row[k]``'s
        parameters (a, d, c: (R,)), and their posteriors (n_students, Q)."""
        log_p, log_q = log_prob_tables(a, d, c, self.nodes)  # (R, Q)
        contrib = np.where(self.x[:, None] > 0, log_p[row], log_q[row])
        tot = self.base + np.add.reduceat(contrib, self.starts, axis=0)
        top = tot.max(axis=1, keepdims=True)
        post = np.exp(tot - top)
        total = post.sum(axis=1, keepdims=True)
        return float(np.sum(np.log(total) + top)), post / total

    def fit_rows(
        self,
        a: np.ndarray,
        d: np.ndarray,
        c: np.ndarray,
        row: np.ndarray,
        free: np.ndarray,
        max_cycles: int = 200,
        tol: float = 1e-5,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """EM on the ``free`` rows' parameters (the others fixed): new (a, d, c) (R,)."""
        rows = np.flatnonzero(free)
        members = [np.flatnonzero(row == r) for r in rows]
        for _ in range(max_cycles):
            _, post = self.loglik(a, d, c, row)
            w = post[self.resp_user]
            nn = np.zeros((a.size, self.nodes.size))
            r1 = np.zeros_like(nn)
            for r, m in zip(rows, members, strict=True):
                nn[r] = w[m].sum(axis=0)
                r1[r] = (w[m] * self.x[m][:, None]).sum(axis=0)
            na, nd, nc = m_step(a, d, c, r1, nn, self.nodes, free, self.model, self.priors)
            moved = max(
                float(np.max(np.abs(na - a))),
                float(np.max(np.abs(nd - d))),
                float(np.max(np.abs(nc - c))),
            )
            a, d, c = na, nd, nc
            if moved < tol:
                break
        return a, d, c
