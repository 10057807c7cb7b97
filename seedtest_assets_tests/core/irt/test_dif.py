"""DIF by likelihood-ratio tests on the anchored multiple-group model: planted DIF found,
items without DIF not; group means and SDs recovered; the profile LR against the exact
refit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seedtest_assets.core.irt.dif import dif
from seedtest_assets.core.irt.simulate import simulate_items, simulate_responses

#: (mean, sd, students) per group; group 0 is the reference.
GROUPS = [(0.0, 1.0, 3000), (0.5, 1.2, 2000), (-0.3, 0.9, 1500)]


def _data(scale: float = 1.0, seed: int = 1):
    """30 items, 10 anchors; items 11-13 are 0.6 logit harder in group 1 (uniform DIF)."""
    items = simulate_items(30, "2PL", seed=4)
    ids = items["item_id"].to_list()
    anchors, planted = ids[:10], ids[10:13]
    rng = np.random.default_rng(seed)
    parts, groups = [], []
    for g, (m, s, n) in enumerate(GROUPS):
        n = int(n * scale)
        it = items
        if g == 1:
            harder = pl.col("item_id").is_in(planted)
            it = items.with_columns(
                b=pl.when(harder).then(pl.col("b") + 0.6).otherwise(pl.col("b"))
            ).with_columns(d=-pl.col("a") * pl.col("b"))
        th = pl.DataFrame({"user_id": np.arange(n) + 100_000 * g, "theta": rng.normal(m, s, n)})
        parts.append(simulate_responses(it, th, 15, seed=seed * 10 + g))
        groups.append(pl.DataFrame({"user_id": th["user_id"], "group": f"org{g}"}))
    return pl.concat(parts), pl.concat(groups), anchors, planted


def test_finds_planted_dif_and_recovers_the_groups() -> None:
    responses, groups, anchors, planted = _data()
    result = dif(responses, groups, anchors)
    assert result.converged and result.reference == "org0"
    found = result.items.with_columns(planted=pl.col("item_id").is_in(planted))
    assert found.height == 20 and (found["df"] == 4).all()
    assert (found.filter("planted")["p"] < 1e-4).all()
    # 17 items without DIF: none below 0.01 (expected 0.17 false positives at 1%).
    assert found.filter(~pl.col("planted") & (pl.col("p") < 0.01)).height == 0
    assert (found.filter("planted")["max_b_shift"] > 0.3).all()
    g = result.groups.sort("group")
    assert g["mean"][0] == 0.0 and g["sd"][0] == 1.0
    np.testing.assert_allclose(g["mean"][1:], [0.5, -0.3], atol=0.15)
    np.testing.assert_allclose(g["sd"][1:], [1.2, 0.9], atol=0.15)


def test_held_anchors_stay_at_their_calibration_and_still_find_the_dif() -> None:
    """``hold_anchors``: the anchors keep the given calibration (the weekly re-test's
    calibrated anchors); only the groups' moments and the studied items move. The planted
    items are found as with re-estimated anchors, with LRs close to those."""
    from seedtest_assets.core.irt import calibrate

    responses, groups, anchors, planted = _data()
    start = calibrate(responses).items.select("item_id", "a", "d", "c")
    free = dif(responses, groups, anchors, start_items=start)
    held = dif(responses, groups, anchors, start_items=start, hold_anchors=True)
    assert held.converged
    both = held.items.join(free.items.select("item_id", free_lr="LR"), on="item_id")
    found = both.filter(pl.col("item_id").is_in(planted))
    assert (found["p"] < 1e-4).all()
    assert both.filter(~pl.col("item_id").is_in(planted) & (pl.col("p") < 0.01)).height == 0
    np.testing.assert_allclose(both["LR"], both["free_lr"], rtol=0.25, atol=1.0)
    assert not np.allclose(both["LR"], both["free_lr"])  # a different model, not a no-op
    # The groups' moments come from the held anchors' scale, near the truth still.
    g = held.groups.sort("group")
    np.testing.assert_allclose(g["mean"][1:], [0.5, -0.3], atol=0.15)


def test_profile_lr_is_the_refit_lr_or_a_little_more() -> None:
    """Holding the rest of the model at the anchored fit can only lower the constrained
    likelihood: profile LR >= refit LR, and close to it."""
    responses, groups, anchors, _ = _data(scale=0.5, seed=2)
    profile = dif(responses, groups, anchors).items
    refit = dif(responses, groups, anchors, method="refit").items
    both = profile.join(refit.select("item_id", exact="LR"), on="item_id")
    assert (both["LR"] >= both["exact"] - 1e-3).all()
    ratio = (both["LR"] + 1) / (both["exact"] + 1)
    assert ratio.max() < 1.3, both.sort("LR")


def test_needs_two_groups_and_an_anchor() -> None:
    responses, groups, anchors, _ = _data(scale=0.2)
    with pytest.raises(ValueError, match="2 groups"):
        dif(responses, groups.with_columns(group=pl.lit("one")), anchors)
    with pytest.raises(ValueError, match="anchor"):
        dif(responses, groups, [123456789])
    with pytest.raises(ValueError, match="2 groups"):
        dif(responses, groups, anchors, min_group_students=10_000)


def test_screen_without_anchors_finds_planted_dif():
    """``anchors=None`` (mirt's scheme "add"): every item tested with all the others as its
    anchors. The 3 planted items are found; of the 27 others at most 1 falls below 1%
    (0.27 expected; the planted DIF also pulls the focal group's mean a little)."""
    responses, groups, _, planted = _data()
    result = dif(responses, groups, None)
    assert result.converged and result.items.height == 30
    found = result.items.with_columns(planted=pl.col("item_id").is_in(planted))
    assert (found.filter("planted")["p"] < 1e-4).all()
    assert found.filter(~pl.col("planted") & (pl.col("p") < 0.01)).height <= 1
    assert (found.filter("planted")["max_b_shift"] > 0.3).all()
    # With every item anchored, org1's 3 harder items pull its estimated mean down (0.34
    # against 0.5 here): the contamination a purified, anchored test then removes.
    g = result.groups.sort("group")
    np.testing.assert_allclose(g["mean"][1:], [0.5, -0.3], atol=0.2)


def test_the_screen_lr_of_clean_items_is_chi_square_sized():
    """Freeing an item that has no DIF gains little: its screen LR is near its df."""
    responses, groups, anchors, planted = _data(scale=0.5, seed=2)
    screen = dif(responses, groups, None).items
    clean = screen.filter(~pl.col("item_id").is_in(planted + anchors))
    assert clean["LR"].median() < 2 * 4  # df 4; a chi-square(4) median is 3.4


def test_screen_with_repeated_attempts():
    """Students who answered an item twice (the product's repeats): the pair's two answers
    enter together; the planted items are still found and every LR is finite."""
    responses, groups, _, planted = _data(scale=0.5, seed=5)
    again = responses.filter(pl.col("user_id") % 3 == 0).with_columns(
        is_correct=~pl.col("is_correct") & (pl.col("user_id") % 2 == 0) | pl.col("is_correct")
    )
    result = dif(pl.concat([responses, again]), groups, None)
    items = result.items
    assert items["LR"].is_finite().all() and (items["LR"] > -1e-6).all()
    assert (items.filter(pl.col("item_id").is_in(planted))["p"] < 1e-3).all()


def test_score_screen_tracks_the_lr_screen():
    """method="score": score tests at the base model, no fit per item. On the planted data
    they agree with the LRs (correlation > 0.99, each within 15% or 1.5 of it), find the 3
    planted items, and give nearly the same per-group b shifts."""
    responses, groups, _, planted = _data()
    lr = dif(responses, groups, None).items
    screen = dif(responses, groups, None, method="score")
    assert screen.converged and screen.iterations > 2  # the moments converged, then 2 cycles
    lm = screen.items
    both = lr.join(lm.select("item_id", LM="LR", p_lm="p", shift_lm="max_b_shift"), on="item_id")
    assert both.height == 30
    assert both.select(pl.corr("LR", "LM")).item() > 0.99
    assert ((both["LM"] - both["LR"]).abs() <= np.maximum(1.5, 0.15 * both["LR"])).all()
    assert (both.filter(pl.col("item_id").is_in(planted))["p_lm"] < 1e-4).all()
    np.testing.assert_allclose(both["shift_lm"], both["max_b_shift"], atol=0.06)


def test_a_known_pooled_calibration_is_not_fitted_again():
    """``start_items``: the students' own calibration (what the weekly job has) replaces the
    pooled fit the screen starts from; the tests come out the same."""
    from seedtest_assets.core.irt import calibrate

    responses, groups, _, planted = _data(scale=0.5, seed=2)
    own = dif(responses, groups, None, method="score").items
    given = dif(
        responses, groups, None, method="score", start_items=calibrate(responses).items
    ).items
    np.testing.assert_allclose(given["LR"], own["LR"], rtol=0.05, atol=0.3)
    # Incomplete (an item missing): ignored, the pooled fit runs.
    partial = calibrate(responses).items.filter(pl.col("item_id") != planted[0])
    again = dif(responses, groups, None, method="score", start_items=partial).items
    np.testing.assert_allclose(again["LR"], own["LR"], rtol=1e-6)


def test_score_screen_on_small_groups_keeps_the_shifts_finite():
    """On groups of 150-300 students a full Newton step can send a slope to ~0 and b to
    +-infinity; the shifts come from the d-only step there and stay believable."""
    responses, groups, _, _ = _data(scale=0.1, seed=7)
    items = dif(
        responses,
        groups,
        None,
        method="score",
        min_group_students=100,
        min_item_responses=10,
    ).items
    assert items["LR"].is_finite().all()
    assert (items["max_b_shift"].is_finite() & (items["max_b_shift"] < 5)).all(), items


def test_the_batched_solve_leaves_only_a_singular_block_out():
    """The score screen solves every (item, group) block in one call; one singular block
    gives NaN there and the others their exact solution."""
    from seedtest_assets.core.irt.dif import _solve_rows

    info = np.tile(np.array([[2.0, 0.5], [0.5, 1.0]]), (2, 3, 1, 1))
    info[1, 2] = 0.0  # singular
    score = np.arange(12, dtype=float).reshape(2, 3, 2)
    out = _solve_rows(info, score)
    assert np.isnan(out[1, 2]).all()
    np.testing.assert_allclose(out[0, 1], np.linalg.solve(info[0, 1], score[0, 1]))
    assert np.isfinite(out[[0, 0, 0, 1, 1], [0, 1, 2, 0, 1]]).all()


def test_a_tiny_group_that_answered_alike_keeps_a_finite_sd():
    """Three students who got everything right: their group's SD shrinks every EM cycle;
    floored at MIN_GROUP_SD it stays a number (it reached 0 and then NaN, with warnings)."""
    import warnings

    from seedtest_assets.core.irt.dif import MIN_GROUP_SD

    responses, groups, _, _ = _data(scale=0.2, seed=3)
    ids = responses["item_id"].unique().sort()
    tiny = pl.DataFrame(
        {
            "user_id": np.repeat([900_001, 900_002, 900_003], ids.len()),
            "item_id": np.tile(ids.to_numpy(), 3),
            "is_correct": True,
        }
    )
    both = pl.concat([responses, tiny.cast(responses.schema)])
    more = pl.concat(
        [groups, pl.DataFrame({"user_id": [900_001, 900_002, 900_003], "group": "tiny"})]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = dif(both, more, None, method="score", min_group_students=3, min_item_responses=3)
    sd = dict(result.groups.select("group", "sd").iter_rows())
    assert np.isfinite(list(sd.values())).all() and sd["tiny"] >= MIN_GROUP_SD
    assert result.items["LR"].is_finite().all()
