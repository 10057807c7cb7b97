"""Item fit (S-X2): R mirt's published LSAT7 values on a common form, the nominal rejection
rate under the true model on sparse data, and planted misfitting items found."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seedtest_assets.core.irt import calibrate
from seedtest_assets.core.irt.fit import item_fit
from seedtest_assets.core.irt.simulate import simulate_items, simulate_responses
from seedtest_assets_tests.core.irt.lsat import MIRT_2PL_S_X2, lsat7_responses


def test_lsat7_matches_mirt() -> None:
    responses = lsat7_responses()
    items = calibrate(responses, "2PL", priors=None, tol=1e-6).items
    fit = item_fit(responses, items)
    # mirt's own test: S_X2 within 1e-2 (absolute), df 2 for every item.
    np.testing.assert_allclose(fit["S_X2"], MIRT_2PL_S_X2, atol=1e-2)
    assert fit["df"].to_list() == [2] * 5
    assert fit["n_groups"].to_list() == [4] * 5  # scores 1..4 of 5 items
    assert fit["n_responses"].to_list() == [680] * 5  # 12 scored 0, 308 scored 5: left out
    assert fit["p"][1] < 0.001 < fit["p"][0]  # item 2 misfits, as mirt reports


def _students(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"user_id": np.arange(n), "theta": rng.normal(0, 1, n)})


@pytest.mark.parametrize("conditioning", ["score", "pattern"])
def test_rejects_at_about_the_nominal_rate_under_the_true_model(conditioning: str) -> None:
    """Sparse (20 of 40 items per student), 6 replications x 40 items = 240 tests each:
    with the true parameters (df = groups) and with estimated ones (df = groups - 2)."""
    true_rej, est_rej = [], []
    for r in range(6):
        items = simulate_items(40, "2PL", seed=r)
        responses = simulate_responses(items, _students(3000, 50 + r), 20, seed=500 + r)
        kw = {"conditioning": conditioning}
        true_fit = item_fit(responses, items, params_per_item=0, **kw)  # type: ignore[arg-type]
        true_rej.append(true_fit["p"].to_numpy() < 0.05)
        fitted = calibrate(responses, "2PL", accelerate="squarem").items
        est_rej.append(item_fit(responses, fitted, **kw)["p"].to_numpy() < 0.05)  # type: ignore[arg-type]
    # SD of a rate near 0.05 over 240 tests: 0.014.
    assert 0.015 <= np.concatenate(true_rej).mean() <= 0.09
    assert 0.015 <= np.concatenate(est_rej).mean() <= 0.09


@pytest.mark.parametrize("conditioning", ["score", "pattern"])
def test_flags_planted_misfitting_items(conditioning: str) -> None:
    """4 of 40 items follow a 3PL with a high floor (c = 0.35, a = 2); the 2PL cannot bend to
    it: S-X2 finds all 4 (p < 0.001) and at most 2 of the 36 others at p < 0.01."""
    items = simulate_items(40, "2PL", seed=11)
    bad = items["item_id"].head(4).to_list()
    planted = pl.col("item_id").is_in(bad)
    items = items.with_columns(
        c=pl.when(planted).then(0.35).otherwise(0.0),
        a=pl.when(planted).then(2.0).otherwise(pl.col("a")),
        b=pl.when(planted).then(0.8).otherwise(pl.col("b")),
    ).with_columns(d=-pl.col("a") * pl.col("b"))
    responses = simulate_responses(items, _students(8000, 3), 20, seed=9)
    fitted = calibrate(responses, "2PL", accelerate="squarem").items
    fit = item_fit(responses, fitted, conditioning=conditioning)  # type: ignore[arg-type]
    flagged = fit.filter(planted)
    assert flagged.height == 4 and (flagged["p"] < 0.001).all(), flagged
    assert fit.filter(~planted & (pl.col("p") < 0.01)).height <= 2


def test_inputs_and_edges() -> None:
    responses = lsat7_responses()
    items = calibrate(responses, "2PL", priors=None).items
    # Text ids, responses to unknown items left out, a subset of students.
    text = responses.with_columns(pl.col("item_id").cast(pl.String))
    extra = pl.DataFrame({"user_id": [0], "item_id": ["99"], "is_correct": [True]})
    fit = item_fit(pl.concat([text, extra]), items.with_columns(pl.col("item_id").cast(pl.String)))
    assert fit["item_id"].dtype == pl.String and fit.height == 5
    np.testing.assert_allclose(fit["S_X2"], MIRT_2PL_S_X2, atol=1e-2)
    sub = item_fit(responses, items, max_students=400, seed=1)
    assert sub["n_responses"].max() < 400
    # Fewer groups than parameters: no statistic.
    one = item_fit(responses, items, params_per_item=4)
    assert one["S_X2"].is_nan().all() and one["p"].is_nan().all()
    with pytest.raises(ValueError, match="items"):
        item_fit(responses, items.drop("a"))


def test_pattern_conditioning_keeps_tied_expectations_together() -> None:
    """On a short common form few patterns exist, so many responses share one E; E is
    computed one way after a right answer and another after a wrong one (equal up to 1e-16).
    Bins that split such a tie by the row order put right answers in one bin and wrong ones
    in the next: LSAT7 then gave p < 1e-80 for four of five items. Kept together, every bin
    is whole and no item is extreme."""
    responses = lsat7_responses()
    items = calibrate(responses, "2PL", priors=None, tol=1e-6).items
    fit = item_fit(responses, items, conditioning="pattern")
    assert (fit["n_responses"] == 1000).all()  # no summed-score exclusions here
    assert (fit["p"] > 1e-3).all(), fit
    assert (fit["n_groups"] <= 10).all()
    with pytest.raises(ValueError, match="conditioning"):
        item_fit(responses, items, conditioning="theta")  # type: ignore[arg-type]


def test_group_detail_lists_the_collapsed_groups():
    """``group_detail``: each item's collapsed groups (what the item-bank page plots), the
    statistic unchanged; the groups' counts add up to the item's responses, proportions in
    [0, 1], ordered by the expected proportion."""
    items = simulate_items(20, "2PL", seed=2)
    rng = np.random.default_rng(2)
    thetas = pl.DataFrame({"user_id": np.arange(3000), "theta": rng.normal(0, 1, 3000)})
    responses = simulate_responses(items, thetas, 12, seed=3)
    plain = item_fit(responses, items, conditioning="pattern")
    detail = item_fit(responses, items, conditioning="pattern", group_detail=True)
    assert detail.drop("group_n", "group_observed", "group_expected").equals(plain)
    for r in detail.iter_rows(named=True):
        assert len(r["group_n"]) == r["n_groups"] == len(r["group_observed"])
        assert sum(r["group_n"]) == r["n_responses"]
        assert all(0 <= p <= 1 for p in r["group_observed"] + r["group_expected"])
        # ordered by expected proportion
        assert r["group_expected"] == sorted(r["group_expected"])


def test_the_sample_stops_at_the_response_limit() -> None:
    """``max_responses``: students are taken in the seeded order while their responses fit
    (the fit's cost is per response); without it the student limit alone picks the same
    students as before the limit existed (numpy's seeded choice over the sorted ids)."""
    from seedtest_assets.core.irt.fit import _sample_students

    responses = lsat7_responses()  # 1,000 students x 5 items
    capped = _sample_students(responses, None, 3, max_responses=1_237)
    assert 1_232 < capped.height <= 1_237 and capped["user_id"].n_unique() == capped.height // 5
    both = _sample_students(responses, 100, 3, max_responses=10_000)
    assert both["user_id"].n_unique() == 100
    ids = responses["user_id"].unique().sort()
    expected = ids.gather(np.sort(np.random.default_rng(3).choice(ids.len(), 100, False)))
    assert both["user_id"].unique().sort().to_list() == expected.to_list()
    # One student more than the limit allows is still one student.
    assert _sample_students(responses, None, 3, max_responses=2)["user_id"].n_unique() == 1
