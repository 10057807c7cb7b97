"""The week's item quality from its calibration: standard errors, fit, information, drift and
DIF per item (plain functions over polars frames; no Dagster, no database).

What each column means and how it is decided:

- ``a_se``, ``b_se``, ``c_se``: the calibration's standard errors on the stored scale
  (observed information; docs/irt.md, "Item quality").
- ``s_x2``, ``fit_df``, ``fit_p``: item fit given each student's other responses
  (:func:`seedtest_assets.core.irt.item_fit`, ``conditioning="pattern"``: the summed-score
  S-X2 is O(n^2) per student), on at most ``fit_max_students`` students with at most
  ``fit_max_responses`` responses (seeded); df lose
  the item's parameters in proportion to that share (:func:`fit_parameters`).
  ``misfit``: ``fit_p < fit_alpha``. Under the model about ``fit_alpha`` of the items misfit
  by chance; :attr:`Assessment.misfit_expected_max` is the 99th percentile of that count.
- ``information``: the item's Fisher information at the calibration population's mean theta.
- ``drift_*``: this week's a and b against last week's, both on the linked scale
  (:func:`seedtest_assets.core.mirt_item_params.linking.anchor_drift`, overlap-corrected);
  ``drifted`` by Holm at ``drift_alpha`` over the items tested; those are the anchors the
  calibration's link left out.
- ``dif_*``: DIF across organisations, every item tested with all the others as anchors
  (:func:`seedtest_assets.core.irt.dif` with ``anchors=None`` and ``method="score"``: score
  tests at the base model, which track the LRs (correlation 0.998 in the tests) at a
  tenth of the cost; ``dif_lr`` holds the score statistic), then the items it flags tested
  again by LR anchored on the items it cleared (:func:`_confirm`: their ``dif_lr``,
  ``dif_p``, ``dif_max_b_shift`` and ``dif`` are the re-test's), on the organisations with at
  least ``dif_min_group_students`` students in the window (at most ``dif_max_groups`` of the
  largest, at most ``dif_max_group_students`` sampled students each, with at most
  ``dif_max_group_responses`` responses). ``dif``: significant
  by Holm at ``dif_alpha`` *and* a b shift of at least ``dif_min_shift`` logits (statistically
  real but tiny differences are not worth a content author's time).
- ``problems``: ``misfit``, ``drift``, ``dif`` joined by ``;`` (null: none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
from scipy.stats import binom

from seedtest_assets.core.irt import dif, item_fit, item_information
from seedtest_assets.core.item_quality.table import ROWS_SCHEMA
from seedtest_assets.core.mirt_item_params.linking import (
    DRIFT_MIN_RESPONSES,
    anchor_drift,
    holm,
)

#: Estimated parameters per item, for the fit's degrees of freedom.
PARAMS_PER_ITEM = {"Rasch": 1, "1PL": 1, "2PL": 2, "3PL": 3}

#: The per-item frame :func:`assess_items` returns: the table's columns without the key and
#: bookkeeping (table.ROWS_SCHEMA); item_id as the product's text id.
ASSESSMENT_SCHEMA = {
    k: ROWS_SCHEMA[k]
    for k in [
        "item_id",
        "a",
        "b",
        "c",
        "a_se",
        "b_se",
        "c_se",
        "n_responses",
        "flagged",
        "s_x2",
        "fit_df",
        "fit_p",
        "misfit",
        "information",
        "drift_z_a",
        "drift_z_b",
        "drift_p",
        "drifted",
        "dif_lr",
        "dif_df",
        "dif_p",
        "dif_groups",
        "dif_max_b_shift",
        "dif",
        "problems",
    ]
}


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds and sizes of :func:`assess_items` (module doc)."""

    fit_alpha: float = 0.01
    fit_max_students: int = 20_000
    #: The fit's cost is per response: at most this many (20,000 students x 50 responses;
    #: the product's students answer ~110 in a 12-week window).
    fit_max_responses: int = 1_000_000
    drift_alpha: float = 0.05
    drift_min_responses: int = DRIFT_MIN_RESPONSES
    dif_alpha: float = 0.05
    dif_min_shift: float = 0.4
    dif_min_group_students: int = 200
    dif_max_group_students: int = 3_000
    #: ... and at most this many of their responses (~75 per item of a 2,000-item bank).
    dif_max_group_responses: int = 150_000
    dif_max_groups: int = 10
    dif_min_item_responses: int = 50
    #: The anchored re-test of the flagged items (:func:`_confirm`): its EM's tolerance and
    #: cycles (docs/irt.md, "Purified re-test"); 0 cycles: no re-test, the screen's flags
    #: stand.
    dif_confirm_tol: float = 1e-3
    dif_confirm_max_cycles: int = 100
    seed: int = 0


@dataclass
class Assessment:
    """:func:`assess_items`' answer: ``items`` (``ASSESSMENT_SCHEMA``) and the counts the
    checks read."""

    items: pl.DataFrame
    theta_mean: float
    fit_tested: int
    misfit: int
    misfit_expected_max: int
    drift_tested: int
    drifted: int
    dif_tested: int
    dif_items: int
    #: per organisation in the DIF model: group, n_students, mean, sd (empty: not run)
    dif_groups: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: why DIF was not tested (None: it was)
    dif_note: str | None = None
    #: per DIF-tested item and organisation, its parameters freed there: item_id, group, a,
    #: b, c (the reference organisation's scale), for the item-bank page's curves
    dif_curves: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: per fit-tested item, its fit groups: item_id, group_n, group_observed, group_expected
    #: (list columns, proportions correct), for the item-bank page's observed-vs-model plot
    fit_groups: pl.DataFrame = field(default_factory=pl.DataFrame)


def assess_items(
    responses: pl.DataFrame,
    items: pl.DataFrame,
    previous: pl.DataFrame,
    *,
    model: str,
    overlap: pl.DataFrame | None = None,
    groups: pl.DataFrame | None = None,
    settings: QualitySettings | None = None,
) -> Assessment:
    """Per-item quality of one week's calibration (module doc).

    Args:
        responses: the calibrated responses: user_id, item_id, is_correct.
        items: the week's stored parameters (stored scale): item_id, a, b, c, d, a_se, b_se,
            c_se, n_responses, flagged, scale_mean, scale_sd.
        previous: last week's stored parameters (same columns; empty: no drift test).
        model: the IRT model ("2PL", ...).
        overlap: item_id, n_common for the drift test's overlap correction (None: none).
        groups: user_id, group (the student's organisation) for DIF; None: no DIF.
        settings: thresholds (default :class:`QualitySettings`).

    Returns:
        :class:`Assessment`, one row per item of ``items``.
    """
    cfg = settings or QualitySettings()
    items = items.with_columns(pl.col("item_id").cast(pl.String))
    responses = responses.with_columns(pl.col("item_id").cast(pl.String))
    coded = _Encoded.of(responses, items, groups)
    mean, sd = _scale(items)
    usable = items.filter(~pl.col("flagged"))
    out = items.select("item_id", "a", "b", "c", "a_se", "b_se", "c_se", "n_responses", "flagged")

    # Fit, on the unflagged items (flagged ones are not used for scoring either).
    fit = pl.DataFrame(
        schema={"item_id": pl.String, "S_X2": pl.Float64, "df": pl.Int64, "p": pl.Float64}
    )
    if usable.height:
        fit = item_fit(
            coded.responses,
            coded.items(usable.select("item_id", "a", "d", "c")),
            params_per_item=fit_parameters(
                model, coded.responses, cfg.fit_max_students, cfg.fit_max_responses
            ),
            mean=mean,
            sd=sd,
            conditioning="pattern",
            max_students=cfg.fit_max_students,
            max_responses=cfg.fit_max_responses,
            seed=cfg.seed,
            group_detail=True,
        )
        fit = coded.names(fit)
    out = out.join(
        fit.select(pl.col("item_id").cast(pl.String), s_x2="S_X2", fit_df="df", fit_p="p"),
        on="item_id",
        how="left",
    ).with_columns(misfit=(pl.col("fit_p") < cfg.fit_alpha).fill_null(False))

    # Information at the population's mean (stored scale).
    info = pl.DataFrame(schema={"item_id": pl.String, "information": pl.Float64})
    if usable.height:
        ordered = usable.sort("item_id")
        info = pl.DataFrame(
            {
                "item_id": ordered["item_id"],
                "information": item_information(ordered.select("item_id", "a", "d", "c"), mean)[
                    :, 0
                ],
            }
        )
    out = out.join(info, on="item_id", how="left")

    # Drift against last week.
    drift = anchor_drift(
        items,
        previous,
        overlap=overlap,
        alpha=cfg.drift_alpha,
        min_responses=cfg.drift_min_responses,
    )
    out = out.join(
        drift.select(
            "item_id", drift_z_a="z_a", drift_z_b="z_b", drift_p="p", drifted_now="drifted"
        ),
        on="item_id",
        how="left",
    ).rename({"drifted_now": "drifted"})

    # DIF across organisations.
    dif_frame, dif_groups, note, curves = _dif(coded, usable, model, cfg)
    out = out.join(dif_frame, on="item_id", how="left").with_columns(
        dif=pl.col("dif").fill_null(False)
    )

    out = out.with_columns(
        problems=pl.concat_str(
            [
                pl.when(pl.col("misfit")).then(pl.lit("misfit")),
                pl.when(pl.col("drifted").fill_null(False)).then(pl.lit("drift")),
                pl.when(pl.col("dif")).then(pl.lit("dif")),
            ],
            separator=";",
            ignore_nulls=True,
        )
    ).with_columns(
        problems=pl.when(pl.col("problems") == "").then(None).otherwise(pl.col("problems"))
    )
    # NaN (no df left, a slope not estimated) means "not tested": null, as in the table.
    out = (
        out.select(list(ASSESSMENT_SCHEMA))
        .cast(pl.Schema(ASSESSMENT_SCHEMA))
        .with_columns(pl.col(pl.Float64).fill_nan(None))
        .sort("item_id")
    )
    tested = int(out["fit_p"].is_not_null().sum())
    return Assessment(
        items=out,
        theta_mean=mean,
        fit_tested=tested,
        misfit=int(out["misfit"].sum()),
        misfit_expected_max=int(binom.ppf(0.99, tested, cfg.fit_alpha)) if tested else 0,
        drift_tested=drift.height,
        drifted=int(drift["drifted"].sum()),
        dif_tested=int(out["dif_p"].is_not_null().sum()),
        dif_items=int(out["dif"].sum()),
        dif_groups=dif_groups,
        dif_note=note,
        dif_curves=curves,
        fit_groups=fit.select(
            pl.col("item_id").cast(pl.String), "group_n", "group_observed", "group_expected"
        )
        if "group_n" in fit.columns
        else pl.DataFrame(),
    )


def fit_parameters(
    model: str, responses: pl.DataFrame, max_students: int, max_responses: int | None = None
) -> int:
    """The parameters per item the fit's df lose: the model's, scaled by the share of the
    calibration's data the fit scores (its students, or its responses when those are the
    tighter limit). Parameters estimated on five times the data the fit sees are, for the
    fit, nearly known: at 5M responses, a 20% sample with the full 2 df taken off rejected
    8.7% at 5% (48 items at 1%, chance 31), all the students 4.3%."""
    k = PARAMS_PER_ITEM.get(model, 2)
    share = min(1.0, max_students / max(responses["user_id"].n_unique(), 1))
    if max_responses is not None:
        share = min(share, max_responses / max(responses.height, 1))
    return k if share >= 1.0 else round(k * share)


def _scale(items: pl.DataFrame) -> tuple[float, float]:
    """The calibration population's theta mean and SD on the stored scale (0, 1 for rows
    written before ``params`` carried them)."""
    mean = items["scale_mean"].drop_nulls() if "scale_mean" in items.columns else None
    sd = items["scale_sd"].drop_nulls() if "scale_sd" in items.columns else None
    m = float(mean[0]) if mean is not None and mean.len() else 0.0
    s = float(sd[0]) if sd is not None and sd.len() else 1.0
    return m, s


_DIF_COLUMNS = {k: v for k, v in ASSESSMENT_SCHEMA.items() if k == "item_id" or k.startswith("dif")}


def _dif(
    coded: _Encoded,
    usable: pl.DataFrame,
    model: str,
    cfg: QualitySettings,
) -> tuple[pl.DataFrame, pl.DataFrame, str | None, pl.DataFrame]:
    """DIF per item (``_DIF_COLUMNS``), the groups of the model, why not (if not), and the
    per-organisation parameters of the tested items."""
    empty = pl.DataFrame(schema=_DIF_COLUMNS)
    groups = coded.groups
    if groups is None:
        return empty, pl.DataFrame(), "no organisations given", pl.DataFrame()
    usable = coded.items(usable)
    resp = coded.responses.filter(pl.col("item_id").is_in(usable["item_id"].implode()))
    members = (
        resp.group_by("user_id")
        .agg(n_resp=pl.len())
        .join(groups.select("user_id", "group").drop_nulls(), on="user_id")
    )
    sizes = (
        members.group_by("group")
        .agg(n=pl.len())
        .filter(pl.col("n") >= cfg.dif_min_group_students)
        .sort("n", "group", descending=[True, False])
        .head(cfg.dif_max_groups)
    )
    if sizes.height < 2:
        return (
            empty,
            pl.DataFrame(),
            f"{sizes.height} organisation(s) with >= {cfg.dif_min_group_students} students in "
            "the window: DIF needs 2",
            pl.DataFrame(),
        )
    # At most dif_max_group_students per organisation and dif_max_group_responses of their
    # responses (seeded order): the test's cost, and one big organisation does not become
    # the whole reference.
    chosen = (
        members.filter(pl.col("group").is_in(sizes["group"].implode()))
        .with_columns(r=pl.col("user_id").hash(cfg.seed).rank("ordinal").over("group"))
        .sort("group", "r")
        .with_columns(taken=pl.col("n_resp").cum_sum().over("group"))
        .filter(
            (pl.col("r") <= cfg.dif_max_group_students)
            & ((pl.col("taken") <= cfg.dif_max_group_responses) | (pl.col("r") == 1))
        )
        .select("user_id", "group")
    )
    sample = resp.join(chosen.select("user_id"), on="user_id")
    # The week's own calibration is the pooled fit DIF starts from (on its N(0, 1) scale:
    # theta = (theta' - mean) / sd on the stored scale); not fitted again.
    mean, sd = _scale(usable)
    start = usable.select(
        "item_id",
        a=pl.col("a") * sd,
        d=pl.col("d") + pl.col("a") * mean,
        c=pl.col("c").fill_null(0.0),
    )
    try:
        result = dif(
            sample,
            chosen,
            None,
            model=model,  # type: ignore[arg-type]  # checked by get_model
            method="score",
            start_items=start,
            min_group_students=cfg.dif_min_group_students,
            min_item_responses=cfg.dif_min_item_responses,
        )
    except ValueError as err:
        return empty, pl.DataFrame(), f"DIF not tested: {err}", pl.DataFrame()
    screen = result.items.with_columns(
        significant=pl.Series(holm(result.items["p"].to_numpy(), cfg.dif_alpha))
    )
    screen = screen.with_columns(
        dif=pl.col("significant") & (pl.col("max_b_shift") >= cfg.dif_min_shift)
    )
    frame, curves, confirm_note = _confirm(
        sample, chosen, start, screen, result.item_groups, model, cfg
    )
    frame = coded.names(frame)
    return (
        frame.select(
            "item_id",
            dif_lr="LR",
            dif_df="df",
            dif_p="p",
            dif_groups="groups",
            dif_max_b_shift="max_b_shift",
            dif="dif",
        ).cast(pl.Schema(_DIF_COLUMNS)),
        result.groups,
        confirm_note,
        coded.names(curves),
    )


def _confirm(
    sample: pl.DataFrame,
    chosen: pl.DataFrame,
    start: pl.DataFrame,
    screen: pl.DataFrame,
    screen_curves: pl.DataFrame,
    model: str,
    cfg: QualitySettings,
) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
    """The screen's flagged items tested again, anchored on the items it cleared (a
    purified test): each flagged item's LR against the anchored multiple-group model in
    which the flagged items are free in every organisation and the cleared items (tested,
    not significant), held at the week's calibration, carry the link. In the screen every
    item is tested with all the others as anchors, DIF items included, and they pull the
    organisations' means; here they do not. ``dif`` then needs Holm over the flagged items
    at ``dif_alpha`` and the b shift of the anchored model. Returns the screen's rows with
    the flagged items' LR, df, p, b shift and ``dif`` replaced, the curves likewise, and a
    note when the anchored test could not run (the screen's flags then stand)."""
    flagged = screen.filter(pl.col("dif"))["item_id"]
    if flagged.len() == 0 or cfg.dif_confirm_max_cycles == 0:
        return screen, screen_curves, None
    cleared = screen.filter(pl.col("p").is_not_null() & ~pl.col("significant"))["item_id"]
    keep = pl.concat([flagged, cleared]).implode()
    try:
        anchored = dif(
            sample.filter(pl.col("item_id").is_in(keep)),
            chosen,
            cleared,
            model=model,  # type: ignore[arg-type]  # checked by get_model
            method="profile",
            start_items=start.filter(pl.col("item_id").is_in(keep)),
            min_group_students=cfg.dif_min_group_students,
            min_item_responses=cfg.dif_min_item_responses,
            tol=cfg.dif_confirm_tol,
            max_cycles=cfg.dif_confirm_max_cycles,
            # The week's calibration of all its students estimated the anchors already.
            hold_anchors=True,
        )
    except ValueError as err:
        return screen, screen_curves, f"the screen's flags stand, not confirmed: {err}"
    retest = anchored.items.filter(pl.col("p").is_not_null())
    retest = retest.with_columns(
        dif=pl.Series(holm(retest["p"].to_numpy(), cfg.dif_alpha), dtype=pl.Boolean)
        & (pl.col("max_b_shift") >= cfg.dif_min_shift)
    ).select("item_id", "LR", "df", "p", "max_b_shift", "dif")
    frame = screen.update(retest, on="item_id")
    curves = pl.concat(
        [
            screen_curves.filter(~pl.col("item_id").is_in(retest["item_id"].implode())),
            anchored.item_groups.join(retest.select("item_id"), on="item_id"),
        ]
    )
    return frame, curves, None


@dataclass(frozen=True)
class _Encoded:
    """The responses with Int64 codes for the text ids, made once: every sample, join,
    group-by and test below then works on integers (on the product's data, 5.3M responses
    with text ids, the repeated string hashing was a third of the assessment's time). Codes
    follow the ids' sort order, so a seeded sample by position picks the same students as
    on the ids."""

    #: user_id, item_id (Int64 codes; user ids that are not text stay as they are), ...
    responses: pl.DataFrame
    #: user_id (as in ``responses``), group; None: no organisations
    groups: pl.DataFrame | None
    #: item code k -> the item's text id
    item_ids: pl.Series

    @classmethod
    def of(
        cls, responses: pl.DataFrame, items: pl.DataFrame, groups: pl.DataFrame | None
    ) -> _Encoded:
        """Encode ``responses`` (item_id String) and ``groups`` the same way."""
        item_ids = pl.concat([items["item_id"], responses["item_id"]]).unique().drop_nulls().sort()
        cols = [_codes("item_id", item_ids)]
        if groups is not None:
            groups = groups.select("user_id", "group").drop_nulls()
        if responses["user_id"].dtype == pl.String:
            user_ids = responses["user_id"].unique().drop_nulls().sort()
            cols.append(_codes("user_id", user_ids))
            if groups is not None:
                known = groups.filter(pl.col("user_id").is_in(user_ids.implode()))
                groups = known.with_columns(_codes("user_id", user_ids))
        return cls(responses.with_columns(cols), groups, item_ids)

    def items(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with its item_id (text, among this encoding's) as the code."""
        return frame.with_columns(_codes("item_id", self.item_ids))

    def names(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with its item_id code as the text id again."""
        return frame.with_columns(item_id=self.item_ids.gather(frame["item_id"]))


def _codes(column: str, ids: pl.Series) -> pl.Expr:
    """``column`` as the position of its value in the sorted, distinct ``ids`` (Int64)."""
    return pl.col(column).cast(pl.String).cast(pl.Enum(ids.to_list())).to_physical().cast(pl.Int64)


#: problem -> (its p-value column, its flag column)
_PROBLEM_COLUMNS = {
    "misfit": ("fit_p", "misfit"),
    "drift": ("drift_p", "drifted"),
    "dif": ("dif_p", "dif"),
}


def worst(items: pl.DataFrame, problem: str, limit: int = 10) -> pl.DataFrame:
    """The ``limit`` items with ``problem`` ("misfit", "drift", "dif"), worst first (smallest
    p), for the UI's metadata and the item-bank page."""
    col, flag = _PROBLEM_COLUMNS[problem]
    return items.filter(pl.col(flag).fill_null(False)).sort(col).head(limit)


__all__ = [
    "ASSESSMENT_SCHEMA",
    "Assessment",
    "QualitySettings",
    "assess_items",
    "worst",
]
