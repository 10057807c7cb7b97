"""Ability scoring with fixed item parameters: EAP (default), MAP and ML.

Methods (theta in logits on the calibration scale; prior N(0, 1))
    EAP
        posterior mean by quadrature; ``se`` = posterior SD. Finite for every pattern,
        including all-correct and all-wrong ones.
    MAP
        posterior mode (Newton from the EAP value, step halving); ``se`` =
        1 / sqrt(observed information + 1) (the prior adds 1), falling back to the expected
        information where the 3PL observed information is not positive.
    ML
        maximum likelihood; ``se`` = 1 / sqrt(test information at theta). All-correct patterns
        get theta = +inf, all-wrong ones -inf, both with se = inf (the likelihood has no
        maximum). A 3PL pattern whose likelihood keeps rising beyond |theta| = 20 is reported
        as +-inf as well. Users without usable responses get theta = NaN, se = inf.

Users without usable responses (EAP and MAP) get the prior: theta 0, se 1, n_responses 0.
Responses to items that are not in the item table are ignored and counted in ``n_ignored``.

Quadrature grid (EAP, and the EAP start of MAP/ML)
    The grid has to be finer than the posterior is narrow: 61 points on [-6, 6] are off by
    0.038 for a user with 1000 responses (notes). Each user's posterior SD is at least
    ``1 / sqrt(1 + sum a_i^2 / 4)`` (a_i^2 / 4 bounds an item's information); a grid spacing
    below that SD keeps the quadrature error under ~1e-8. ``score`` uses a 121-point grid
    (spacing 0.1: enough for ~100 information units, e.g. 200 responses with a = 1.4) and
    rescores users who need more on a finer grid (up to 4001 points). Pass
    ``quadrature_points`` to force one grid for everyone.

Speed
    :class:`ItemBank` precomputes log P and log(1 - P) for every item at every node (one table,
    two rows per item), so scoring is a table gather plus a sum: ``ItemBank.score_one`` is the
    online path (one user, one session), ``score`` the batch path (sparse products).
"""

from __future__ import annotations

import math
from typing import NamedTuple, get_args

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.special import expit, log_expit

from seedtest_assets.core.irt import data as _data
from seedtest_assets.core.irt.data import (
    IdCodes,
    SparseResponses,
    interleave,
    map_blocks,
    parse_item_params,
    response_arrays,
    sparse_counts,
)
from seedtest_assets.core.irt.models import log_prob_tables, max_information
from seedtest_assets.core.irt.quadrature import (
    DEFAULT_SCORING_POINTS,
    MAX_QUADRATURE_POINTS,
    grid,
    points_for_information,
)
from seedtest_assets.core.options import ScoringMethod

METHODS: tuple[ScoringMethod, ...] = get_args(ScoringMethod)
#: ML estimates beyond this |theta| are reported as +-inf (the likelihood has no finite max).
ML_LIMIT = 20.0
NEWTON_ITERATIONS = 60

ABILITY_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "theta": pl.Float64(),
    "se": pl.Float64(),
    "n_responses": pl.Int64(),
    "n_ignored": pl.Int64(),
}


class Ability(NamedTuple):
    """One user's estimate: theta and se (logits), responses used and ignored."""

    theta: float
    se: float
    n_responses: int
    n_ignored: int


class ItemBank:
    """Fixed item parameters with precomputed per-node log-probabilities.

    Args:
        items: polars frame with ``item_id``, ``a``, ``b`` or ``d``, optional ``c`` (as
            returned by ``calibrate(...).items``).
        quadrature_points: base grid on [-6, 6] (default 121).

    Attributes: ``item_codes`` (:class:`~.data.IdCodes`) and ``item_ids`` (its sorted ids, a
    polars Series in the frame's dtype: integers, strings, categoricals, ...); ``a``, ``d``,
    ``c`` float64 (n_items,); ``nodes`` float64 (Q,); ``table`` float64 (2 n_items, Q) with
    row 2i = log(1 - P_i), row 2i + 1 = log P_i, so a response's row is
    ``2 * item_index + is_correct``.
    """

    def __init__(
        self, items: pl.DataFrame, quadrature_points: int = DEFAULT_SCORING_POINTS
    ) -> None:
        if items.height == 0:
            raise ValueError("items is empty: scoring needs item parameters")
        a, d, c, codes = parse_item_params(items, "items")
        self.item_codes, self.item_ids = codes, codes.ids
        self.a, self.d, self.c = a, d, c
        self.max_info = max_information(a)
        self.nodes = grid(quadrature_points)
        self.nodes_sq = self.nodes**2
        self.log_prior = -0.5 * self.nodes_sq
        self.table = self._table(self.nodes)
        self._fine: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Largest summed a^2/4 the base grid integrates accurately (see points_for_information).
        spacing = self.nodes[1] - self.nodes[0]
        self.info_limit = 1.0 / spacing**2 - 1.0
        # Integer ids: a dense id -> position lookup when they are compact enough (<= 8 MB):
        # 1 us instead of ~6 us for a binary search on the online path. Other ids: a dict
        # (built on the first score_one).
        self._ints = codes.ints
        self._offset = 0
        self._dense: np.ndarray | None = None
        self._index: dict[object, int] | None = None
        ints = self._ints
        if ints is not None:
            self._offset = int(ints[0])
            span = int(ints[-1]) - self._offset + 1
            if span <= max(4 * ints.size, 1_000_000):
                self._dense = np.full(span, -1, dtype=np.intp)
                self._dense[ints - self._offset] = np.arange(ints.size)

    @property
    def n_items(self) -> int:
        return self.item_codes.size

    def _table(self, nodes: np.ndarray) -> np.ndarray:
        log_p, log_q = log_prob_tables(self.a, self.d, self.c, nodes)
        return interleave(log_q, log_p)

    #: Finer grids are rounded up to a multiple of this (+1) and their tables kept (at most
    #: ``FINE_TABLES``): a long-lived bank (the θ-update service) scores one student at a
    #: time, and building a 2,000-item table per call cost 10 ms of a ~12 ms scoring.
    FINE_STEP, FINE_TABLES = 64, 8

    def fine_table(self, points: int) -> tuple[np.ndarray, np.ndarray]:
        """(nodes, log-probability table) of a grid with at least ``points`` points (a
        multiple of :attr:`FINE_STEP` plus one, at most ``MAX_QUADRATURE_POINTS``), cached."""
        step = self.FINE_STEP
        points = min(-(-(int(points) - 1) // step) * step + 1, MAX_QUADRATURE_POINTS)
        cache = self._fine
        if points not in cache:
            if len(cache) >= self.FINE_TABLES:
                cache.pop(next(iter(cache)))
            nodes = grid(points)
            cache[points] = (nodes, self._table(nodes))
        return cache[points]

    def lookup(self, item_ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``item_ids`` (array (n,): integers for a bank of integer ids, else
        values of the bank's ids, e.g. strings) in the bank and a known-item mask (n,)."""
        ints = self._ints
        if ints is None:
            return self._lookup_values(item_ids)
        ids = np.asarray(item_ids)
        if ids.dtype != np.int64:
            try:
                if ids.dtype.kind in "US":  # numpy would parse "1007" as 1007
                    raise TypeError("text ids")
                ids = ids.astype(np.int64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"item ids {ids.dtype} cannot be matched with the bank's item_id "
                    f"({self.item_ids.dtype}): both must be integers or both text"
                ) from exc
        if self._dense is not None:
            rel = ids - self._offset
            inside = (rel >= 0) & (rel < self._dense.size)
            pos = self._dense[np.where(inside, rel, 0)]
            known = inside & (pos >= 0)
            return np.where(known, pos, 0), known
        pos = np.searchsorted(ints, ids)
        np.minimum(pos, self.n_items - 1, out=pos)
        return pos, ints[pos] == ids

    def _lookup_values(self, item_ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`lookup` for a bank of non-integer ids: a dict from each id (as a string
        for text ids) to its position."""
        if self._index is None:
            text = self.item_codes.kind == "text"
            keys = self.item_ids.cast(pl.String) if text else self.item_ids
            self._index = {k: i for i, k in enumerate(keys.to_list())}
        values = item_ids.to_list() if isinstance(item_ids, pl.Series) else np.asarray(item_ids)
        if isinstance(values, np.ndarray):
            if self.item_codes.kind == "text" and values.dtype.kind not in "USO":
                raise ValueError(
                    f"item ids {values.dtype} cannot be matched with the bank's item_id "
                    f"({self.item_ids.dtype}): both must be integers or both text"
                )
            values = values.tolist()
        index = self._index
        pos = np.fromiter((index.get(v, -1) for v in values), dtype=np.intp, count=len(values))
        known = pos >= 0
        return np.where(known, pos, 0), known

    def find(self, item_ids: IdCodes, where: str = "responses") -> tuple[np.ndarray, np.ndarray]:
        """:meth:`lookup` of a frame's encoded item ids (``where`` names it in the error
        when its dtype cannot be matched with the bank's)."""
        if item_ids.ints is not None and self._ints is not None:
            return self.lookup(item_ids.ints)
        names = ("items.item_id", f"{where}.item_id")
        if self._ints is None and len(item_ids) <= FIND_IN_DICT:
            # A few ids (one student's items): the bank's cached dict, not a polars
            # replace that maps all of the bank's ids each call (0.8 ms at 2,000 items).
            self.item_codes.matches(item_ids, names)
            return self._lookup_values(item_ids.ids)
        return self.item_codes.find(item_ids, names)

    def score_one(
        self,
        item_ids: ArrayLike,
        correct: ArrayLike,
        method: ScoringMethod = "EAP",
    ) -> Ability:
        """Score one user's responses: item_ids (n,) (ints, or strings for a bank of text
        ids), correct bool or 0/1 (n,).

        ``method``: "EAP" (default), "MAP" or "ML" (case-insensitive). Returns theta and se
        in logits. The online path (a session just finished): ~30 us for 50 responses (EAP).
        Unknown items are ignored; a history too long for the base grid is scored on a finer
        one.
        """
        method = _method(method)
        y = np.asarray(correct).astype(np.intp, copy=False)
        pos, known = self.lookup(item_ids)
        n_ignored = int(known.size - np.count_nonzero(known))
        if n_ignored:
            pos, y = pos[known], y[known]
        n = int(pos.size)
        if n == 0:
            return _no_data(method, n_ignored)
        if self.max_info[pos].sum() <= self.info_limit:
            # 1-D EAP inline: the hot path (~30 us for 50 responses).
            post = self.table.take(2 * pos + y, axis=0).sum(axis=0)
            post += self.log_prior
            post -= post.max()
            np.exp(post, out=post)
            total = post.sum()
            mean = float(post @ self.nodes) / total
            var = float(post @ self.nodes_sq) / total - mean * mean
            if method == "EAP":
                return Ability(mean, math.sqrt(max(var, 0.0)), n, n_ignored)
            theta = np.array([mean])
        else:
            nodes = grid(int(points_for_information(self.max_info[pos].sum())))
            log_p, log_q = log_prob_tables(self.a[pos], self.d[pos], self.c[pos], nodes)
            ll = np.where(y[:, None] == 1, log_p, log_q).sum(axis=0)
            theta, se = _eap(ll[None, :], nodes, -0.5 * nodes**2)
        if method == "EAP":
            return Ability(float(theta[0]), float(se[0]), n, n_ignored)
        users = np.zeros(n, dtype=np.int64)
        th, s = _newton(users, pos, y.astype(np.float64), 1, theta, self, method)
        return Ability(float(th[0]), float(s[0]), n, n_ignored)


#: Up to this many distinct text item ids, :meth:`ItemBank.find` looks them up in its dict.
FIND_IN_DICT = 5_000


def score(
    responses: pl.DataFrame,
    items: pl.DataFrame | ItemBank,
    method: ScoringMethod = "EAP",
    quadrature_points: int | None = None,
) -> pl.DataFrame:
    """Score every user in ``responses`` with fixed item parameters.

    Args:
        responses: polars frame with ``user_id``, ``item_id`` (ids of any dtype, no nulls;
            ``item_id`` matching the items': both integers or both text), ``is_correct``.
        items: item parameters (``calibrate(...).items``) or a prebuilt :class:`ItemBank`.
        method: "EAP" (default), "MAP" or "ML" (case-insensitive).
        quadrature_points: None = adaptive grid (121 points, finer where a user needs it);
            an int = that grid for everyone.

    Returns:
        polars frame, one row per user (sorted by user_id; user_id in the input's dtype):
        user_id, theta, se (logits), n_responses (used), n_ignored (responses to items not in
        ``items``).
    """
    method = _method(method)
    bank = items if isinstance(items, ItemBank) else ItemBank(items)
    data = response_arrays(responses)
    n_users = data.user_ids.size
    pos, known = bank.find(data.item_ids)
    if known.all():  # the usual case: no copies of the response arrays
        n_ignored = np.zeros(n_users, dtype=np.int64)
        users, item_pos, y = data.users, pos[data.items], data.correct
    else:
        resp_known = known[data.items]
        n_ignored = np.bincount(data.users[~resp_known], minlength=n_users)
        users = data.users[resp_known]
        item_pos = pos[data.items[resp_known]]
        y = data.correct[resp_known]
    n_used = np.bincount(users, minlength=n_users)

    theta = np.zeros(n_users)
    se = np.ones(n_users)
    if users.size:
        counts = sparse_counts(users, item_pos, y, n_users, bank.n_items)
        if quadrature_points is not None:
            groups = [(np.arange(n_users), int(quadrature_points))]
        else:
            info = counts.responses_per_user(bank.max_info)
            fine = info > bank.info_limit
            needed = points_for_information(info)
            groups = [(np.flatnonzero(~fine), bank.nodes.size)]
            if fine.any():
                groups.append((np.flatnonzero(fine), int(needed[fine].max())))
        for rows, points in groups:
            if rows.size == 0:
                continue
            if points == bank.nodes.size:
                nodes, table = bank.nodes, bank.table
            else:
                nodes, table = bank.fine_table(points)
            sub = counts if rows.size == n_users else SparseResponses(counts.counts[rows], 0)
            theta[rows], se[rows] = _eap_sparse(sub, table, nodes)
        if method != "EAP":
            theta, se = _newton(users, item_pos, y, n_users, theta, bank, method)
    empty = n_used == 0
    if method == "ML":
        theta[empty], se[empty] = np.nan, np.inf
    else:
        theta[empty], se[empty] = 0.0, 1.0
    return pl.DataFrame(
        {
            "user_id": data.user_ids.decode(),
            "theta": theta,
            "se": se,
            "n_responses": n_used.astype(np.int64),
            "n_ignored": n_ignored.astype(np.int64),
        },
        schema={**ABILITY_SCHEMA, "user_id": data.user_ids.ids.dtype},
    )


def _method(method: object) -> ScoringMethod:
    """The canonical spelling of a scoring method (case-insensitive); ValueError if unknown."""
    upper = str(method).upper()
    for name in METHODS:
        if upper == name:
            return name
    raise ValueError(f"method must be one of {METHODS}, got {upper!r}")


def _no_data(method: str, n_ignored: int) -> Ability:
    if method == "ML":
        return Ability(float("nan"), float("inf"), 0, n_ignored)
    return Ability(0.0, 1.0, 0, n_ignored)


def _eap_sparse(
    counts: SparseResponses, table: np.ndarray, nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """EAP theta and posterior SD (float64 (n_users,)) from response counts (n_users x
    2 n_items) and a log-probability table (2 n_items, Q).

    Row blocks of ``BLOCK_CELLS / Q`` users (see :func:`._data.map_blocks`):
    the (block, Q) log-likelihood stays in cache and memory stays bounded on fine grids. Same
    arithmetic per row as one big block.
    """
    n_users = counts.counts.shape[0]
    step = max(1, _data.BLOCK_CELLS // nodes.size)
    log_prior = -0.5 * nodes**2
    theta, se = np.empty(n_users), np.empty(n_users)

    def run(start: int) -> None:
        stop = min(start + step, n_users)
        theta[start:stop], se[start:stop] = _eap(counts.rows(start, stop) @ table, nodes, log_prior)

    map_blocks(run, range(0, n_users, step))
    return theta, se


def _eap(ll: np.ndarray, nodes: np.ndarray, log_prior: np.ndarray) -> tuple[np.ndarray, ...]:
    """Posterior mean and SD per row of ``ll`` (log-likelihood, float64 (n_users, Q)).

    Equally spaced nodes: the trapezoid rule reduces to weights proportional to the
    posterior density (the end nodes carry ~exp(-18) of the prior mass, negligible).
    """
    post = ll
    post += log_prior  # in place: ll is a temporary of the caller
    post -= post.max(axis=1, keepdims=True)
    np.exp(post, out=post)
    # Mass and first two moments in one product (n_users, 3); no normalized copy of post.
    moments = post @ np.stack([np.ones_like(nodes), nodes, nodes * nodes], axis=1)
    mean = moments[:, 1] / moments[:, 0]
    var = moments[:, 2] / moments[:, 0] - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def _response_terms(
    theta_r: np.ndarray, a: np.ndarray, d: np.ndarray, c: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per response: log-likelihood, score, observed and expected information about theta.

    With psi = expit(a theta + d) and P = c + (1 - c) psi:
    dlogL/dtheta = a (y - P) psi / P; observed information
    a^2 psi (1 - psi) [(1 - c) psi / P - (y - P) c / P^2]; expected a^2 (1-c) psi^2 (1-psi) / P.
    """
    z = a * theta_r + d
    psi = expit(z)
    # 2PL terms first (cheap: no logaddexp, which is slow), then the exact 3PL terms for the
    # responses to items with c > 0.
    loglik = log_expit(np.where(y == 1, z, -z))
    grad = a * (y - psi)
    observed = a * a * psi * (1 - psi)
    expected = observed.copy()
    guess = np.flatnonzero(c > 0)
    if guess.size:
        zg, pg, cg, ag, yg = z[guess], psi[guess], c[guess], a[guess], y[guess]
        p = cg + (1 - cg) * pg
        log_1m_c = np.log1p(-cg)
        log_p = np.logaddexp(np.log(cg), log_1m_c + log_expit(zg))
        log_q = log_1m_c + log_expit(-zg)
        loglik[guess] = np.where(yg == 1, log_p, log_q)
        psi_p = pg / p
        grad[guess] = ag * (yg - p) * psi_p
        base = observed[guess]
        expected[guess] = base * (1 - cg) * psi_p
        observed[guess] = base * ((1 - cg) * psi_p - (yg - p) * cg / (p * p))
    return loglik, grad, observed, expected


def _user_sums(
    theta: np.ndarray,
    users: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    y: np.ndarray,
    n_users: int,
    prior: float,
) -> tuple[np.ndarray, ...]:
    """Per-user log-posterior (or log-likelihood when prior = 0), its derivative, observed and
    expected information at ``theta`` (n_users,), summed over the given responses."""
    loglik, grad, obs, expc = _response_terms(theta[users], a, d, c, y)
    f = np.bincount(users, weights=loglik, minlength=n_users) - 0.5 * prior * theta**2
    g = np.bincount(users, weights=grad, minlength=n_users) - prior * theta
    h_obs = np.bincount(users, weights=obs, minlength=n_users) + prior
    h_exp = np.bincount(users, weights=expc, minlength=n_users) + prior
    return f, g, h_obs, h_exp


def _newton(
    users: np.ndarray,
    item_pos: np.ndarray,
    y: np.ndarray,
    n_users: int,
    start: np.ndarray,
    bank: ItemBank,
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP or ML theta for all users at once (per-response terms summed with bincount).

    users, item_pos: int (n,) codes; y float64 (n,); start float64 (n_users,) (EAP values).
    Returns theta and se, float64 (n_users,).
    """
    prior = 1.0 if method == "MAP" else 0.0
    a, d, c = bank.a[item_pos], bank.d[item_pos], bank.c[item_pos]
    theta = start.copy()
    n_used = np.bincount(users, minlength=n_users)
    n_right = np.bincount(users, weights=y, minlength=n_users)
    active = n_used > 0
    if method == "ML":
        all_right = active & (n_right == n_used)
        all_wrong = active & (n_right == 0)
        active &= ~(all_right | all_wrong)

    f, g, h_obs, h_exp = _user_sums(theta, users, a, d, c, y, n_users, prior)
    bound = ML_LIMIT + 1.0
    # Newton from the EAP values converges in a few steps for most users; later iterations
    # only touch the responses of users still moving.
    todo = active.copy()
    for _ in range(NEWTON_ITERATIONS):
        h = np.where(h_obs > 0, h_obs, h_exp)
        step = np.where(todo, np.clip(g / np.maximum(h, 1e-12), -1.0, 1.0), 0.0)
        todo &= np.abs(step) > 1e-10
        if not todo.any():
            break
        sel = todo[users]
        su, sa, sd, sc, sy = users[sel], a[sel], d[sel], c[sel], y[sel]
        pending = todo.copy()
        for _ in range(30):
            trial = np.clip(theta + step, -bound, bound)
            tf, tg, tho, the = _user_sums(trial, su, sa, sd, sc, sy, n_users, prior)
            ok = pending & (tf >= f - 1e-12)
            theta = np.where(ok, trial, theta)
            f, g = np.where(ok, tf, f), np.where(ok, tg, g)
            h_obs, h_exp = np.where(ok, tho, h_obs), np.where(ok, the, h_exp)
            pending &= ~ok
            if not pending.any():
                break
            step = np.where(pending, 0.5 * step, 0.0)
        todo &= ~pending  # no improving step: at the optimum to machine precision
    info = np.where(h_obs > 0, h_obs, h_exp) if method == "MAP" else h_exp
    with np.errstate(divide="ignore"):
        se = 1.0 / np.sqrt(np.maximum(info, 0.0))
    if method == "ML":
        diverged = active & (np.abs(theta) >= ML_LIMIT)
        theta = np.where(diverged, np.sign(theta) * np.inf, theta)
        theta[all_right], theta[all_wrong] = np.inf, -np.inf
        se[all_right | all_wrong | diverged] = np.inf
    return theta, se


__all__ = ["METHODS", "Ability", "ItemBank", "score"]
