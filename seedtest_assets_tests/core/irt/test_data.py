"""Input parsing (data.py): id encoding and sparse layout (the fast paths must equal np.unique /
the COO build), blocked posteriors, and the item-parameter frame shared by anchors and scoring."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seedtest_assets.core.irt import ItemBank, data, score, simulate
from seedtest_assets.core.irt.data import encode, parse_item_params, sparse_counts


@pytest.mark.parametrize(
    "values",
    [
        np.array([5, 5, 7, 9, 9, 9, 12], dtype=np.int64),  # sorted: running-count path
        np.array([9, 5, 12, 5, 7, 9, 9], dtype=np.int64),  # compact ids: dense lookup path
        np.array([3 * 10**15, -7, 42, -7, 3 * 10**15, 0], dtype=np.int64),  # wide: search
        np.array([4], dtype=np.int64),
    ],
)
def test_encode_equals_np_unique(values):
    distinct, codes = encode(values)
    ref_distinct, ref_codes = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(distinct, ref_distinct)
    np.testing.assert_array_equal(codes, ref_codes.ravel())
    assert codes.dtype == np.int64


def test_sorted_layout_equals_coo_build_with_repeated_attempts():
    rng = np.random.default_rng(0)
    users = np.sort(rng.integers(0, 50, 600))
    items = rng.integers(0, 20, 600)  # repeats of (user, item) pairs included
    correct = rng.integers(0, 2, 600).astype(np.float64)
    fast = sparse_counts(users, items, correct, 50, 20)
    order = rng.permutation(600)  # unsorted users: the COO -> CSR path
    slow = sparse_counts(users[order], items[order], correct[order], 50, 20)
    np.testing.assert_array_equal(fast.counts.toarray(), slow.counts.toarray())
    table = rng.normal(size=(40, 7))
    np.testing.assert_allclose(fast.loglik(table), slow.loglik(table), rtol=1e-12)
    for got, want in zip(
        fast.expected(np.ones((50, 7))), slow.expected(np.ones((50, 7))), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_score_is_the_same_for_sorted_and_shuffled_rows(monkeypatch):
    responses, items, _ = simulate(3_000, 100, 20, seed=5)
    bank = ItemBank(items)
    by_user = score(responses, bank)
    shuffled = score(responses.sample(fraction=1.0, shuffle=True, seed=1), bank)
    assert by_user["user_id"].to_list() == shuffled["user_id"].to_list()
    np.testing.assert_allclose(by_user["theta"], shuffled["theta"], atol=1e-12)
    np.testing.assert_allclose(by_user["se"], shuffled["se"], atol=1e-12)
    # many EAP blocks on two threads (block size forced small) = the same numbers
    monkeypatch.setattr(data, "BLOCK_CELLS", 121 * 64)
    blocked = score(responses, bank)
    np.testing.assert_allclose(blocked["theta"], by_user["theta"], atol=1e-12)
    np.testing.assert_allclose(blocked["se"], by_user["se"], atol=1e-12)


def test_blocked_posterior_equals_one_dense_pass(monkeypatch):
    rng = np.random.default_rng(3)
    users = np.sort(rng.integers(0, 300, 3_000))
    items = rng.integers(0, 40, 3_000)
    correct = rng.integers(0, 2, 3_000).astype(np.float64)
    counts = sparse_counts(users, items, correct, 300, 40)
    table = np.log(rng.uniform(0.05, 0.95, size=(80, 11)))
    log_prior = np.log(np.full(11, 1 / 11))
    dense = counts.counts.toarray() @ table + log_prior
    top = dense.max(axis=1, keepdims=True)
    weights = np.exp(dense - top)
    total = weights.sum(axis=1, keepdims=True)
    want_ll = float(np.sum(np.log(total) + top))
    weights /= total
    monkeypatch.setattr(data, "BLOCK_CELLS", 11 * 32)  # 10 blocks on two threads
    ll, both, mass = counts.posterior(table, log_prior)
    assert ll == pytest.approx(want_ll, rel=1e-12)
    np.testing.assert_allclose(both, counts.counts.toarray().T @ weights, rtol=1e-10)
    np.testing.assert_allclose(mass, weights.sum(axis=0), rtol=1e-12)
    assert counts.posterior(table, log_prior, expected=False)[1:] == (None, None)


def test_parse_item_params_from_b_or_d_sorted_by_id():
    frame = pl.DataFrame({"item_id": [30, 10], "a": [2.0, 0.5], "b": [0.5, -2.0]})
    a, d, c, ids = parse_item_params(frame)
    assert ids.ids.to_list() == [10, 30]
    np.testing.assert_array_equal(a, [0.5, 2.0])
    np.testing.assert_array_equal(d, [1.0, -1.0])  # d = -a b
    np.testing.assert_array_equal(c, [0.0, 0.0])
    # d wins over b when it is complete; a null c is 0
    both = frame.with_columns(d=pl.Series([7.0, 8.0]), c=pl.Series([0.2, None]))
    a, d, c, _ = parse_item_params(both)
    np.testing.assert_array_equal(d, [8.0, 7.0])
    np.testing.assert_array_equal(c, [0.0, 0.2])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"item_id": [1], "b": [0.0]}), "needs columns"),
        (pl.DataFrame({"item_id": [1], "a": [1.0]}), "needs b or d"),
        (pl.DataFrame({"item_id": [1, 1], "a": [1.0, 1.0], "b": [0.0, 0.0]}), "duplicate"),
        (pl.DataFrame({"item_id": [1], "a": [float("nan")], "b": [0.0]}), "finite"),
        (pl.DataFrame({"item_id": [1], "a": [1.0], "b": [0.0], "c": [1.0]}), r"\[0, 1\)"),
    ],
)
def test_parse_item_params_rejects_bad_frames(frame, message):
    with pytest.raises(ValueError, match=message):
        parse_item_params(frame)
