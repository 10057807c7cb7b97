"""Responses frame -> sparse user x item count matrices.

Rows are users, columns items (CSR). Repeated attempts of the same user at the same item are
summed: each attempt counts as one independent Bernoulli response (the same local-independence
assumption as every other response). Rows with a null ``is_correct`` drop out, as missing
responses do in mirt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

REQUIRED_COLUMNS = ("user_id", "item_id", "is_correct")


@dataclass
class ResponseArrays:
    """One row per response, as integer codes.

    - ``user_ids``: int64 (n_users,), sorted distinct user ids; ``users``: int64 (n,) codes.
    - ``item_ids``: int64 (n_items,), sorted distinct item ids; ``items``: int64 (n,) codes.
    - ``correct``: float64 (n,), 1.0 correct, 0.0 wrong.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    correct: np.ndarray


def response_arrays(responses: pl.DataFrame) -> ResponseArrays:
    """Validate ``responses`` (user_id, item_id, is_correct) and encode it.

    Raises ValueError on missing columns or when no non-null response is left.
    """
    if not isinstance(responses, pl.DataFrame):
        raise TypeError(f"responses must be a polars DataFrame, got {type(responses).__name__}")
    missing = [col for col in REQUIRED_COLUMNS if col not in responses.columns]
    if missing:
        raise ValueError(f"responses is missing column(s) {missing}")
    frame = responses.select(REQUIRED_COLUMNS).drop_nulls()
    if frame.height == 0:
        raise ValueError("responses is empty: IRT needs at least one non-null response")
    user = frame["user_id"].cast(pl.Int64).to_numpy()
    item = frame["item_id"].cast(pl.Int64).to_numpy()
    correct = frame["is_correct"].cast(pl.Float64).to_numpy()
    if np.any((correct != 0.0) & (correct != 1.0)):
        raise ValueError("is_correct must be boolean or 0/1")
    user_ids, users = np.unique(user, return_inverse=True)
    item_ids, items = np.unique(item, return_inverse=True)
    return ResponseArrays(user_ids, item_ids, users.ravel(), items.ravel(), correct)


@dataclass
class SparseResponses:
    """Sparse counts, users x items (CSR) plus their item-major transposes (CSR too).

    - ``right``: correct responses per (user, item); ``total``: all responses.
    - ``right_t`` / ``total_t``: the same, items x users, for item-side sums (posterior
      expected counts). Stored as CSR of the transpose because ``csr @ dense`` is the fastest
      scipy sparse product and each matrix is multiplied every EM cycle.
    """

    right: sp.csr_array
    total: sp.csr_array
    right_t: sp.csr_array
    total_t: sp.csr_array

    @property
    def wrong(self) -> sp.csr_array:
        """Wrong responses per (user, item): total - right (built on demand)."""
        return self.total - self.right


def sparse_counts(
    users: np.ndarray, items: np.ndarray, correct: np.ndarray, n_users: int, n_items: int
) -> SparseResponses:
    """Build :class:`SparseResponses` from codes (int arrays (n,)) and correctness (n,)."""
    shape = (n_users, n_items)
    total = sp.csr_array((np.ones(users.size), (users, items)), shape=shape)
    right = sp.csr_array((correct, (users, items)), shape=shape)
    # Keep the sparsity structure of `right` equal to `total` (explicit zeros are cheap and
    # make `total - right` structural), then sum duplicates.
    total.sum_duplicates()
    right.sum_duplicates()
    return SparseResponses(
        right=right,
        total=total,
        right_t=sp.csr_array(right.T),
        total_t=sp.csr_array(total.T),
    )
