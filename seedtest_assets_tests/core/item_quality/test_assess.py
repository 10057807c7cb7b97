"""The week's item quality on simulated data with planted problems: a misfitting item, a
drifted item and an item with DIF across organisations are each found, and the clean items
are not (known truth)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seedtest_assets.core.irt import calibrate, dif
from seedtest_assets.core.irt.simulate import simulate_items, simulate_responses
from seedtest_assets.core.item_quality.assess import (
    ASSESSMENT_SCHEMA,
    QualitySettings,
    assess_items,
    worst,
)

#: (theta mean, students) per organisation.
ORGS = [(0.0, 3000), (0.4, 2400), (-0.3, 2000), (0.1, 150)]


def _week(seed: int = 3):
    """30 items, 20 responses per student. The hardest item is made sharp (a = 2.8, b = 1.3)
    with a 3PL floor (c = 0.4) but is fitted as 2PL (misfit); the most discriminating of the
    others is 0.9 logit harder in org1 (DIF)."""
    truth = simulate_items(30, "2PL", seed=seed)
    misfit_id = truth.sort("b")["item_id"][-1]
    hard = pl.col("item_id") == misfit_id
    truth = truth.with_columns(
        a=pl.when(hard).then(2.8).otherwise("a"), b=pl.when(hard).then(1.3).otherwise("b")
    ).with_columns(d=-pl.col("a") * pl.col("b"))
    dif_id = truth.filter(~hard).sort("a")["item_id"][-1]
    rng = np.random.default_rng(seed)
    parts, groups = [], []
    for g, (m, n) in enumerate(ORGS):
        it = truth
        if g == 1:
            it = it.with_columns(
                b=pl.when(pl.col("item_id") == dif_id).then(pl.col("b") + 0.9).otherwise("b")
            ).with_columns(d=-pl.col("a") * pl.col("b"))
        users = pl.DataFrame(
            {"user_id": [f"u{g}-{k}" for k in range(n)], "theta": rng.normal(m, 1.0, n)}
        )
        r = simulate_responses(it, users, 20, seed=seed * 10 + g)
        parts.append(r)
        groups.append(pl.DataFrame({"user_id": users["user_id"], "group": f"org{g}"}))
    responses = pl.concat(parts)
    # The guessing floor for item 1000: wrong answers become right with probability 0.4.
    flip = rng.random(responses.height) < 0.4
    responses = responses.with_columns(
        is_correct=pl.col("is_correct") | ((pl.col("item_id") == misfit_id) & pl.Series(flip))
    )
    return responses, pl.concat(groups), truth, misfit_id, dif_id


def _stored(responses: pl.DataFrame) -> pl.DataFrame:
    """What mirt_item_params stores: parameters with SEs, on a scale with mean 0, SD 1."""
    cal = calibrate(responses, standard_errors=True)
    return cal.items.with_columns(
        pl.col("item_id").cast(pl.String), scale_mean=pl.lit(0.0), scale_sd=pl.lit(1.0)
    )


@pytest.fixture(scope="module")
def week():
    responses, groups, truth, misfit_id, dif_id = _week()
    items = _stored(responses)
    # Last week: the same estimates, except one (neither planted) item, which was 0.8 logit
    # easier then (it drifted), and a small wobble within the SEs elsewhere.
    rng = np.random.default_rng(9)
    others = truth.filter(~pl.col("item_id").is_in([misfit_id, dif_id]))
    drift_id = str(others["item_id"][0])
    previous = items.with_columns(
        b=pl.when(pl.col("item_id") == drift_id)
        .then(pl.col("b") - 0.8)
        .otherwise(pl.col("b") + pl.Series(rng.normal(0, 0.3, items.height)) * pl.col("b_se"))
    )
    result = assess_items(
        responses, items, previous, model="2PL", groups=groups, settings=QualitySettings()
    )
    return result, str(misfit_id), str(dif_id), drift_id


def test_finds_the_misfitting_item_and_few_others(week):
    result, misfit_id, _, _ = week
    items = result.items
    assert items.schema == pl.Schema(ASSESSMENT_SCHEMA)
    assert items.height == 30 and result.fit_tested == 30
    row = items.filter(pl.col("item_id") == misfit_id).row(0, named=True)
    assert row["misfit"] and row["fit_p"] < 1e-3 and "misfit" in row["problems"]
    # At 1%, 29 clean items give 0-2 false alarms (the 99th percentile is 2).
    assert result.misfit_expected_max == 2
    assert items.filter(pl.col("misfit") & (pl.col("item_id") != misfit_id)).height <= 2
    assert worst(items, "misfit")["item_id"][0] == misfit_id


def test_finds_the_drifted_anchor_only(week):
    result, _, _, drift_id = week
    assert result.drift_tested == 30
    drifted = result.items.filter(pl.col("drifted"))["item_id"].to_list()
    assert drifted == [drift_id]
    row = result.items.filter(pl.col("item_id") == drift_id).row(0, named=True)
    assert row["drift_z_b"] > 3 and "drift" in row["problems"]


def test_finds_the_dif_item_across_organisations(week):
    result, _, dif_id, _ = week
    # org3 (150 students) is below the 200-student floor: three organisations tested.
    assert sorted(result.dif_groups["group"].to_list()) == ["org0", "org1", "org2"]
    assert result.dif_note is None and result.dif_tested == 30
    flagged = result.items.filter(pl.col("dif"))["item_id"].to_list()
    assert dif_id in flagged and len(flagged) <= 2
    row = result.items.filter(pl.col("item_id") == dif_id).row(0, named=True)
    assert row["dif_p"] < 1e-6 and row["dif_max_b_shift"] > 0.5 and row["dif_df"] == 4


def test_a_flagged_item_is_confirmed_anchored_on_the_items_the_screen_cleared():
    """The screen tests each item against all the others, the DIF item among them; the
    flagged item's numbers are then the re-test's: an LR in the model anchored on the
    cleared items only. Computed directly with :func:`dif` and those anchors, on the
    assessment's own sample, they are the same numbers."""
    responses, groups, _, _, dif_id = _week()
    items = _stored(responses)
    cfg = QualitySettings()
    result = assess_items(responses, items, items.head(0), model="2PL", groups=groups)
    screen_only = assess_items(
        responses,
        items,
        items.head(0),
        model="2PL",
        groups=groups,
        settings=QualitySettings(dif_confirm_max_cycles=0),
    )
    got = result.items.filter(pl.col("item_id") == str(dif_id)).row(0, named=True)
    was = screen_only.items.filter(pl.col("item_id") == str(dif_id)).row(0, named=True)
    assert got["dif"] and was["dif"] and result.dif_note is None
    assert got["dif_lr"] != was["dif_lr"]  # a different statistic: the anchored LR
    # The re-test by hand: the same organisations, anchored on the items the screen did
    # not find significant (all 29 others here), held at the week's calibration.
    kept = groups.filter(pl.col("group") != "org3")  # under the 200-student floor
    cleared = screen_only.items.filter(pl.col("dif_p").is_not_null() & ~pl.col("dif"))
    assert cleared.height == 29
    direct = dif(
        responses,
        kept,
        cleared["item_id"].cast(responses["item_id"].dtype).to_list(),
        model="2PL",
        method="profile",
        start_items=items.select(pl.col("item_id").cast(pl.Int64), "a", "d", "c"),
        min_group_students=cfg.dif_min_group_students,
        min_item_responses=cfg.dif_min_item_responses,
        tol=cfg.dif_confirm_tol,
        max_cycles=cfg.dif_confirm_max_cycles,
        hold_anchors=True,  # calibrated anchors: the week's estimates
    ).items.row(0, named=True)
    assert str(direct["item_id"]) == str(dif_id)
    assert got["dif_lr"] == pytest.approx(direct["LR"], rel=1e-6)
    assert got["dif_p"] == pytest.approx(direct["p"], rel=1e-6)
    assert got["dif_max_b_shift"] == pytest.approx(direct["max_b_shift"], rel=1e-6)
    # Its curves on the page are the anchored model's, one per organisation.
    curves = result.dif_curves.filter(pl.col("item_id") == str(dif_id))
    assert sorted(curves["group"].to_list()) == ["org0", "org1", "org2"]


def test_information_is_at_the_population_mean(week):
    result, *_ = week
    items = result.items
    p = 1 / (1 + np.exp(-items["a"].to_numpy() * (0.0 - items["b"].to_numpy())))
    np.testing.assert_allclose(items["information"], items["a"].to_numpy() ** 2 * p * (1 - p))


def test_dif_needs_two_large_organisations():
    responses, groups, *_ = _week()
    items = _stored(responses)
    one = groups.with_columns(group=pl.lit("everyone-in-one"))
    result = assess_items(responses, items, items.head(0), model="2PL", groups=one)
    assert result.dif_tested == 0 and "DIF needs 2" in (result.dif_note or "")
    assert result.drift_tested == 0 and result.items["drifted"].null_count() == 30
    assert not result.items["dif"].any()


def test_dif_reads_at_most_the_response_limit_per_organisation():
    """``dif_max_group_responses``: each organisation's DIF sample stops at that many
    responses (20 per student here: 6,000 responses = 300 students), whichever limit binds."""
    responses, groups, *_ = _week()
    items = _stored(responses)
    settings = QualitySettings(dif_max_group_responses=6_000, dif_min_item_responses=20)
    result = assess_items(
        responses, items, items.head(0), model="2PL", groups=groups, settings=settings
    )
    sizes = dict(result.dif_groups.select("group", "n_students").iter_rows())
    assert sizes == {"org0": 300, "org1": 300, "org2": 300}
    assert result.dif_tested == 30


def test_finds_the_dif_the_generator_planted():
    """On the product-shaped generator's data (adaptive item choice, growth, repeats), the DIF
    it plants across organisations is what the weekly screen finds: most planted items, and
    next to no others (known truth: ``Population.truth_dif``)."""
    from seedtest_assets.core.synthetic import SyntheticConfig, generate

    pop = generate(SyntheticConfig(n_users=5000, weeks=6, seed=5, n_orgs=4, dif_items=4))
    responses = pop.attempts.filter(pl.col("is_correct").is_not_null()).select(
        "user_id", "item_id", "is_correct"
    )
    groups = pop.users.select("user_id", group="org_id")
    items = _stored(responses)
    result = assess_items(responses, items, items.head(0), model="2PL", groups=groups)
    planted = set(pop.truth_dif["item_id"].to_list())
    assert len(planted) == 4
    flagged = set(result.items.filter(pl.col("dif"))["item_id"].to_list())
    assert result.dif_groups.height == 4, result.dif_note
    assert len(flagged & planted) >= 3, (flagged, planted)
    assert len(flagged - planted) <= 1, (flagged, planted)
