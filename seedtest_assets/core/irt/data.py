"""Input frames -> arrays: responses (for calibration and scoring) and item parameters.

- :class:`IdCodes` is the one place ids become dense integer codes and back: ids of any
  dtype (integers of any width, strings, categoricals / enums, ...) in, int64 codes out,
  results keyed by the original ids in their original dtype.
- :func:`response_arrays` validates a responses frame and encodes its ids;
  :func:`sparse_counts` turns the codes into a sparse user x item count matrix
  (:class:`SparseResponses`, with the blocked E-step products both EM and scoring use).
- :func:`parse_item_params` validates an item-parameter frame (anchors for calibration, the
  item bank for scoring) into (a, d, c, item_id) arrays.

Rows are users, columns items (CSR). Repeated attempts of the same user at the same item are
summed: each attempt counts as one independent Bernoulli response (the same local-independence
assumption as every other response). Rows with a null ``is_correct`` drop out, as missing
responses do in mirt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from seedtest_assets.core.irt.models import intercept

REQUIRED_COLUMNS = ("user_id", "item_id", "is_correct")
#: Users x nodes work is done in row blocks of about this many cells (8 MB of float64) ...
BLOCK_CELLS = 1 << 20
#: ... on up to this many threads (this machine: 2 cores).
THREADS = min(2, os.cpu_count() or 1)
T = TypeVar("T")


#: Id dtypes that can be matched with each other (e.g. a responses' String item_id with an
#: anchors' Categorical one); any other dtype only matches itself.
_TEXT = (pl.String, pl.Categorical, pl.Enum)
_UNSUPPORTED = (pl.List, pl.Array, pl.Struct, pl.Object, pl.Null)


def id_kind(dtype: pl.DataType) -> str:
    """``"integer"`` (any width), ``"text"`` (String, Categorical, Enum) or the dtype's own
    name: ids of one kind can be matched with each other."""
    if dtype.is_integer():
        return "integer"
    if isinstance(dtype, _TEXT):
        return "text"
    return str(dtype)


def check_no_null_ids(frame: pl.DataFrame, columns: Sequence[str], where: str) -> None:
    """ValueError naming the column and the count when an id column holds nulls (a response
    or an item without an id is a data error, never silently dropped)."""
    for col in columns:
        nulls = frame[col].null_count()
        if nulls:
            raise ValueError(
                f"{where}.{col} has {nulls:,} null value(s) of {frame.height:,}: every row "
                f"needs a {col}"
            )


#: Up to this many values, :meth:`IdCodes.encode` numbers text ids in Python.
ENCODE_IN_PYTHON = 2_000


@dataclass(frozen=True, eq=False)
class IdCodes:
    """The distinct ids of one id column and their dense codes 0..k-1 (the sparse matrices
    and parameter arrays are indexed by code).

    - ``ids``: the sorted distinct ids, a polars Series in the column's original dtype
      (sorted as polars sorts that dtype: numbers numerically, strings and categoricals
      lexically, enums in category order); code ``i`` is ``ids[i]``.
    - ``ints``: the same ids as int64 (k,) for integer columns (None otherwise): integer ids
      are matched and encoded in numpy exactly as they always were.

    :meth:`encode` turns a column into (codes, IdCodes), :meth:`decode` codes back into ids,
    :meth:`find` looks another column's ids up among these.
    """

    ids: pl.Series
    ints: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.ids.len()

    def __len__(self) -> int:
        return self.size

    @property
    def kind(self) -> str:
        return id_kind(self.ids.dtype)

    @classmethod
    def encode(cls, series: pl.Series, where: str = "") -> tuple[np.ndarray, IdCodes]:
        """Codes int64 (n,) of ``series`` (no nulls) and its :class:`IdCodes`.

        - Integers (any width): cast to int64 and :func:`encode` (running count for sorted
          input, else a dense lookup or binary search).
        - Strings sorted already (responses grouped by user): a running count.
        - Other strings and categoricals: a hash pass (a cast to a fresh categorical, whose
          physical codes number the distinct values in order of appearance), then the k
          distinct values are sorted and the codes renumbered; enums use their physical
          codes (their sort order).
        - Any other dtype (dates, floats, ...): dense ranks (a sort).
        """
        name = f"{where}.{series.name}" if where else series.name
        dtype = series.dtype
        if isinstance(dtype, _UNSUPPORTED):
            raise ValueError(f"{name} has dtype {dtype}: ids must be integers, text or scalars")
        if series.null_count():
            raise ValueError(f"{name} has {series.null_count():,} null value(s)")
        if dtype.is_integer():
            try:
                values = series.cast(pl.Int64).to_numpy()
            except pl.exceptions.InvalidOperationError as exc:
                raise ValueError(f"{name} ({dtype}) has ids beyond the Int64 range") from exc
            distinct, codes = encode(values)
            ids = pl.Series(series.name, distinct)
            return codes, cls(ids if dtype == pl.Int64 else ids.cast(dtype), distinct)
        if series.len() == 0:
            return np.empty(0, dtype=np.int64), cls(series.head(0))
        if dtype == pl.String and series.len() <= ENCODE_IN_PYTHON:
            # One student's responses: a sort in Python costs ~0.1 ms where the hash pass
            # below costs 0.8 ms (~150 item ids, under line_profiler). Python orders str by
            # code point, polars String by UTF-8 bytes: the same order.
            texts: list[str] = series.to_list()
            ordered_texts = sorted(set(texts))
            index = {v: i for i, v in enumerate(ordered_texts)}
            codes = np.fromiter((index[v] for v in texts), dtype=np.int64, count=len(texts))
            return codes, cls(pl.Series(series.name, ordered_texts, dtype=pl.String))
        if dtype == pl.String and series.is_sorted():
            change = series.ne_missing(series.shift(1)).fill_null(True)
            codes = (change.cum_sum() - 1).cast(pl.Int64).to_numpy()
            return codes, cls(series.filter(change))
        ordered = isinstance(dtype, pl.Enum)
        if isinstance(dtype, (pl.Categorical, pl.Enum)):
            keys = series.to_physical()
        elif dtype == pl.String:
            keys = series.cast(pl.Categorical(pl.Categories.random())).to_physical()
        else:
            keys, ordered = series.rank("dense"), True
        _, codes = encode(keys.cast(pl.Int64).to_numpy())
        k = int(codes.max()) + 1
        first = np.empty(k, dtype=np.int64)
        first[codes] = np.arange(codes.size)  # a row of each code (any: same id)
        ids = series.gather(first)
        if not ordered:  # codes in order of appearance -> in sort order
            order = ids.arg_sort().to_numpy()
            ids = ids.gather(order)
            rank = np.empty(k, dtype=np.int64)
            rank[order] = np.arange(k)
            codes = rank[codes]
        return codes, cls(ids)

    def decode(self, codes: np.ndarray | None = None) -> pl.Series:
        """The ids of ``codes`` (int array) in the original dtype; all distinct ids if None."""
        return self.ids if codes is None else self.ids.gather(codes)

    def matches(self, other: IdCodes, names: tuple[str, str]) -> None:
        """ValueError naming both columns and dtypes when ``other``'s ids cannot be matched
        with these (integer ids only match integer ids, text only text)."""
        if self.kind != other.kind:
            raise ValueError(
                f"{names[1]} ({other.ids.dtype}) cannot be matched with {names[0]} "
                f"({self.ids.dtype}): ids must both be integers or both text (String, "
                "Categorical, Enum), or have the same dtype"
            )

    def find(self, other: IdCodes, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``other``'s ids among these (int64 (len(other),), 0 where unknown)
        and a known mask bool (len(other),). ``names``: (this column, other column) for the
        error when the dtypes cannot be matched."""
        self.matches(other, names)
        if self.ints is not None and other.ints is not None:
            pos = np.searchsorted(self.ints, other.ints)
            np.minimum(pos, max(self.size - 1, 0), out=pos)
            known = self.ints[pos] == other.ints if self.size else np.zeros(len(other), bool)
            return pos, known
        mine = self.ids.cast(pl.String) if self.kind == "text" else self.ids
        theirs = other.ids.cast(pl.String) if other.kind == "text" else other.ids
        pos = theirs.replace_strict(
            mine, np.arange(self.size), default=-1, return_dtype=pl.Int64
        ).to_numpy()
        known = pos >= 0
        return np.where(known, pos, 0), known

    def cast_like(self, other: IdCodes, names: tuple[str, str]) -> pl.Series:
        """These ids in ``other``'s dtype (for output frames keyed by ``other``'s ids)."""
        self.matches(other, names)
        if self.ids.dtype == other.ids.dtype:
            return self.ids
        try:
            return self.ids.cast(other.ids.dtype)
        except pl.exceptions.PolarsError as exc:
            raise ValueError(
                f"{names[1]} ({self.ids.dtype}) does not fit {names[0]}'s dtype "
                f"({other.ids.dtype}): {exc}"
            ) from exc


@dataclass
class ResponseArrays:
    """One row per response, as integer codes.

    - ``user_ids``: :class:`IdCodes` of the distinct users (``user_ids.ids`` sorted, in the
      input dtype); ``users``: int64 (n,) codes.
    - ``item_ids``: :class:`IdCodes` of the distinct items; ``items``: int64 (n,) codes.
    - ``correct``: float64 (n,), 1.0 correct, 0.0 wrong.
    """

    user_ids: IdCodes
    item_ids: IdCodes
    users: np.ndarray
    items: np.ndarray
    correct: np.ndarray


def response_arrays(responses: pl.DataFrame) -> ResponseArrays:
    """Validate ``responses`` (user_id, item_id, is_correct) and encode it.

    Ids may have any dtype (see :class:`IdCodes`); rows with a null ``is_correct`` drop out.

    Raises ValueError on missing columns, null ids, or when no non-null response is left.
    """
    if not isinstance(responses, pl.DataFrame):
        raise TypeError(f"responses must be a polars DataFrame, got {type(responses).__name__}")
    missing = [col for col in REQUIRED_COLUMNS if col not in responses.columns]
    if missing:
        raise ValueError(f"responses is missing column(s) {missing}")
    check_no_null_ids(responses, ("user_id", "item_id"), "responses")
    frame = responses.select(REQUIRED_COLUMNS).drop_nulls("is_correct")
    if frame.height == 0:
        raise ValueError("responses is empty: IRT needs at least one non-null response")
    correct = frame["is_correct"].cast(pl.Float64).to_numpy()
    if np.any((correct != 0.0) & (correct != 1.0)):
        raise ValueError("is_correct must be boolean or 0/1")
    users, user_ids = IdCodes.encode(frame["user_id"], "responses")
    items, item_ids = IdCodes.encode(frame["item_id"], "responses")
    return ResponseArrays(user_ids, item_ids, users, items, correct)


def encode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's position among them: the result of
    ``np.unique(values, return_inverse=True)`` (int64 (k,), int64 (n,)), without its sort of
    all n values (0.4 s for 5M random item ids; this takes ~30 ms).

    - Already sorted input (responses ordered by user): one pass, codes from a running count.
    - Otherwise the distinct values come from polars (hash-based, multi-threaded) and codes
      from a dense lookup array when the ids are compact (span <= 8x their count or 2^22),
      else from a binary search.
    """
    n = values.size
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    step = values[1:] != values[:-1]
    if bool(np.all(values[1:] >= values[:-1])):
        codes = np.empty(n, dtype=np.int64)
        codes[0] = 0
        np.cumsum(step, out=codes[1:])
        return values[np.flatnonzero(np.r_[True, step])], codes
    distinct = pl.Series(values).unique().sort().to_numpy()
    low = int(distinct[0])
    span = int(distinct[-1]) - low + 1
    if span <= max(8 * distinct.size, 1 << 22):
        lookup = np.empty(span, dtype=np.int64)
        lookup[distinct - low] = np.arange(distinct.size)
        return distinct, lookup[values - low]
    return distinct, np.searchsorted(distinct, values)


@dataclass
class SparseResponses:
    """Response counts as one sparse matrix, users x (2 n_items), CSR.

    Column ``2 i + y`` counts the user's responses to item ``i`` with outcome ``y`` (0 wrong,
    1 correct). With a per-item table ``T`` (2 n_items, Q) whose row ``2 i + y`` is
    ``log P(y | node)``, the per-user log-likelihood at every node is one sparse product
    ``counts @ T``, and the posterior expected counts per item outcome are one transposed
    product ``counts.T @ W`` (half the products of separate correct / total matrices).
    :meth:`posterior` does both for row blocks of users on up to two threads (1.6x faster
    than whole-matrix products for 5M responses: 5.9 s vs 9.2 s per calibration).
    The transposed product goes through the CSC view on purpose: it scatters into a small
    (2 n_items, Q) result while streaming W in order; a CSR copy of the transpose gathers W
    rows at random and measured 4x slower (0.45 s vs 0.12 s for 5M responses, 61 nodes).
    """

    counts: sp.csr_array
    n_items: int

    def loglik(self, table: np.ndarray) -> np.ndarray:
        """Per-user log-likelihood: float64 (n_users, Q) from ``table`` (2 n_items, Q)."""
        return self.counts @ table

    def expected(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected (correct, total) responses per item and node: two float64 (n_items, Q),
        from posterior weights float64 (n_users, Q)."""
        both = self.counts.T @ weights
        right = both[1::2]
        return right, right + both[0::2]

    def posterior(
        self,
        table: np.ndarray,
        log_prior: np.ndarray,
        expected: bool = True,
        *,
        mass_only: bool = False,
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """One E-step pass over all users, in row blocks on up to two threads.

        Args:
            table: float64 (2 n_items, Q), row ``2 i + y`` = log P(y | node) of item i.
            log_prior: float64 (Q,), log prior weights of the nodes (normalized).
            expected: also return the expected counts and the posterior mass.
            mass_only: with ``expected``, the posterior mass without the expected counts
                (None in their place): what moment-only cycles need, without the (2 n_items,
                Q) product per block.

        Returns:
            (marginal log-likelihood in nats, expected counts float64 (2 n_items, Q) with row
            ``2 i + y`` = expected responses with outcome y to item i at each node, posterior
            mass per node float64 (Q,) summed over users); the last two None if not
            ``expected``.

        Blocks of ``BLOCK_CELLS / Q`` users keep the (block, Q) posterior in cache and never
        hold the whole (n_users, Q) weight matrix; per-block partial sums are added in block
        order, so the result does not depend on thread timing.
        """
        n_users = self.counts.shape[0]
        q = table.shape[1]
        step = max(1, BLOCK_CELLS // q)

        def run(start: int) -> tuple[float, np.ndarray | None, np.ndarray | None]:
            part = self.rows(start, min(start + step, n_users))
            post = part @ table
            post += log_prior
            top = post.max(axis=1, keepdims=True)
            post -= top
            np.exp(post, out=post)
            total = post.sum(axis=1, keepdims=True)
            ll = float(np.sum(np.log(total)) + np.sum(top))
            if not expected:
                return ll, None, None
            post /= total
            return ll, None if mass_only else part.T @ post, post.sum(axis=0)

        parts = map_blocks(run, range(0, n_users, step))
        ll = float(sum(p[0] for p in parts))
        if not expected:
            return ll, None, None
        both, mass = parts[0][1], parts[0][2]
        assert mass is not None  # expected: every block returns it
        for _, p_both, p_mass in parts[1:]:
            mass += p_mass
            if both is not None and p_both is not None:
                both += p_both
        return ll, both, mass

    def rows(self, start: int, stop: int) -> sp.csr_array:
        """Rows ``start:stop`` as a CSR array sharing this matrix's buffers (no copy)."""
        c = self.counts
        lo, hi = c.indptr[start], c.indptr[stop]
        return sp.csr_array(
            (c.data[lo:hi], c.indices[lo:hi], c.indptr[start : stop + 1] - lo),
            shape=(stop - start, c.shape[1]),
        )

    def responses_per_user(self, per_item: np.ndarray) -> np.ndarray:
        """Sum over each user's responses of ``per_item`` (n_items,): float64 (n_users,)."""
        return self.counts @ np.repeat(per_item, 2)


def map_blocks(func: Callable[[int], T], starts: Sequence[int]) -> list[T]:
    """``[func(s) for s in starts]``, on ``THREADS`` threads when there are several blocks
    (sparse products and numpy ufuncs release the GIL). Results keep the order of ``starts``."""
    if len(starts) <= 1 or THREADS == 1:
        return [func(s) for s in starts]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(func, starts))


def interleave(log_q: np.ndarray, log_p: np.ndarray) -> np.ndarray:
    """Table (2 n_items, Q): row 2 i = log(1 - P_i), row 2 i + 1 = log P_i."""
    table = np.empty((2 * log_q.shape[0], log_q.shape[1]))
    table[0::2] = log_q
    table[1::2] = log_p
    return table


def sparse_counts(
    users: np.ndarray, items: np.ndarray, correct: np.ndarray, n_users: int, n_items: int
) -> SparseResponses:
    """Build :class:`SparseResponses` from codes (int arrays (n,)) and correctness (n,)."""
    cols = 2 * items + correct.astype(np.int64)
    shape = (n_users, 2 * n_items)
    if users.size and bool(np.all(users[1:] >= users[:-1])):
        # Responses already grouped by user (the usual order): the CSR arrays directly, no
        # COO -> CSR conversion (saves ~0.15 s for 5M responses). Within a row the columns may
        # be unsorted or repeated (repeated attempts): sparse products sum them all the same.
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        counts = sp.csr_array((np.ones(users.size), cols, indptr), shape=shape)
    else:
        counts = sp.csr_array((np.ones(users.size), (users, cols)), shape=shape)
        counts.sum_duplicates()
    return SparseResponses(counts=counts, n_items=n_items)


def parse_item_params(
    frame: pl.DataFrame, where: str = "fixed_items"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, IdCodes]:
    """(a, d, c, item ids), sorted by item_id, from an item frame with ``item_id`` (any
    dtype), ``a`` and ``b`` or ``d`` (``d`` wins when it has no nulls), optional ``c``
    (null = 0).

    float64 (n,) each, the ids as :class:`IdCodes` (code i = row i of the arrays). Used for
    calibration anchors (``fixed_items``) and for the scoring item bank (``where`` names
    the frame in the messages).

    Raises:
        ValueError: missing columns, null or duplicate ids, non-finite parameters, c outside
        [0, 1).
    """
    if "item_id" not in frame.columns or "a" not in frame.columns:
        raise ValueError(f"{where} needs columns item_id, a and b or d")
    check_no_null_ids(frame, ("item_id",), where)
    codes, ids = IdCodes.encode(frame["item_id"], where)
    if ids.size != codes.size:
        raise ValueError(f"{where} has duplicate item_id values")
    fa = frame["a"].cast(pl.Float64).to_numpy().copy()
    if "d" in frame.columns and frame["d"].null_count() == 0:
        fd = frame["d"].cast(pl.Float64).to_numpy().copy()
    elif "b" in frame.columns:
        fd = intercept(fa, frame["b"].cast(pl.Float64).to_numpy())
    else:
        raise ValueError(f"{where} needs b or d")
    if "c" in frame.columns:
        fc = frame["c"].cast(pl.Float64).fill_null(0.0).to_numpy().copy()
    else:
        fc = np.zeros(codes.size)
    if not (np.isfinite(fa).all() and np.isfinite(fd).all() and np.isfinite(fc).all()):
        raise ValueError(f"{where} parameters must be finite")
    if ((fc < 0) | (fc >= 1)).any():
        raise ValueError(f"{where} c must lie in [0, 1)")
    order = np.empty(codes.size, dtype=np.int64)
    order[codes] = np.arange(codes.size)  # distinct ids: the row of each code
    return fa[order], fd[order], fc[order], ids
