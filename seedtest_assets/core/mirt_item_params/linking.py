"""Linking a new calibration's theta scale to last week's (no Dagster).

Mean/sigma linking on common items: with ``b`` of the items both calibrations estimated,
``A = sd(b_prev) / sd(b_new)`` and ``B = mean(b_prev) - A * mean(b_new)`` map the new scale
onto the previous one: ``theta' = A theta + B``, ``b' = A b + B``, ``a' = a / A``,
``d' = -a' b'``; ``c`` is unchanged. (Kolen & Brennan, *Test Equating*, ch. 6.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from scipy.stats import chi2

#: Fewer common items than this and the link is too noisy to apply.
MIN_COMMON_ITEMS = 10
#: Items used for the link must be well determined in both weeks: sd(b) is not robust, and
#: one flat item (a = 0.006, b = -178 on 35 responses, seen in a test) made A = 9.9.
LINK_MIN_SLOPE = 0.3
LINK_MAX_ABS_B = 4.0


@dataclass(frozen=True)
class Link:
    """``theta_previous = A * theta_new + B``, from ``common`` items."""

    A: float
    B: float
    common: int
    #: common items left out of the link because they drifted (:func:`robust_link`)
    dropped: tuple[str, ...] = ()

    @property
    def identity(self) -> bool:
        return self.A == 1.0 and self.B == 0.0


IDENTITY = Link(1.0, 0.0, 0)


def mean_sigma_link(new: pl.DataFrame, previous: pl.DataFrame) -> Link:
    """The mean/sigma link from ``new`` to ``previous`` item parameters.

    Args:
        new, previous: ``item_id``, ``a``, ``b``, ``flagged``; only unflagged items with
            ``a >= LINK_MIN_SLOPE`` and ``|b| <= LINK_MAX_ABS_B`` in both are used.

    Returns:
        The link; the identity when fewer than ``MIN_COMMON_ITEMS`` items are in common.
    """
    usable = (
        ~pl.col("flagged") & (pl.col("a") >= LINK_MIN_SLOPE) & (pl.col("b").abs() <= LINK_MAX_ABS_B)
    )
    common = (
        new.filter(usable)
        .select("item_id", pl.col("b").alias("b_new"))
        .join(previous.filter(usable).select("item_id", pl.col("b").alias("b_prev")), on="item_id")
    )
    if common.height < MIN_COMMON_ITEMS:
        return Link(1.0, 0.0, common.height)
    # Float columns: polars' std/mean are floats (or None when empty) here.
    stats = common.select(
        sd_new=pl.col("b_new").std(),
        sd_prev=pl.col("b_prev").std(),
        mean_new=pl.col("b_new").mean(),
        mean_prev=pl.col("b_prev").mean(),
    ).row(0, named=True)
    sd_new, sd_prev = stats["sd_new"], stats["sd_prev"]
    if not sd_new or not sd_prev:
        return Link(1.0, 0.0, common.height)
    A = float(sd_prev / sd_new)
    B = float(stats["mean_prev"] - A * stats["mean_new"])
    return Link(A, B, common.height)


def apply_link(items: pl.DataFrame, link: Link) -> pl.DataFrame:
    """``items`` (a, b, c, d) transformed onto the linked scale; their standard errors too
    when present (``a_se``, ``b_se``, ``d_se``, ``ad_cov``; ``c_se`` is unchanged).

    With ``d' = d - a B / A``: ``var d' = var d + (B/A)^2 var a - 2 (B/A) cov(a, d)`` and
    ``cov(a', d') = cov(a, d) / A - B var a / A^2`` (exact: the map is linear in a and d).
    """
    A, B = link.A, link.B
    out = items.with_columns(
        a=pl.col("a") / A,
        b=pl.col("b") * A + B,
    ).with_columns(d=-pl.col("a") * pl.col("b"))
    if not {"a_se", "b_se", "d_se", "ad_cov"} <= set(items.columns):
        return out
    r = B / A
    var_a, var_d, cov = pl.col("a_se") ** 2, pl.col("d_se") ** 2, pl.col("ad_cov")
    return out.with_columns(
        a_se=pl.col("a_se") / A,
        b_se=pl.col("b_se") * A,
        # A Rasch slope (a_se 0) and anchors (NaN) carry through: NaN stays NaN.
        d_se=(var_d + r * r * var_a.fill_nan(0.0) - 2 * r * cov.fill_nan(0.0)).clip(0.0).sqrt(),
        ad_cov=cov / A - B * var_a / (A * A),
    )


#: Anchors whose drift test rejects at this family-wise level (Holm over the tested items)
#: are left out of the link.
DRIFT_ALPHA = 0.05

#: A drift must also be this large to count: b moved at least this many logits, or a by at
#: least this factor's log (|ln(a_new / a_prev)| >= 0.3, a 35% change). The usual displacement
#: rule of thumb; the Wald test alone, with hundreds of items of ~150 responses each, flags
#: 0.2-logit wobbles that asymptotic SEs understate (seen on the synthetic bank).
DRIFT_MIN_SHIFT = 0.3

#: Items with fewer responses than this in either calibration are not tested for drift: the
#: priors' pull and the asymptotic SEs are unreliable there (on the demo's second week an
#: item going from 114 to 227 responses "drifted" at z = -4 as its prior's weight halved).
DRIFT_MIN_RESPONSES = 200

#: :func:`anchor_drift`'s frame.
DRIFT_SCHEMA = {
    "item_id": pl.String(),
    "shift_b": pl.Float64(),
    "z_a": pl.Float64(),
    "z_b": pl.Float64(),
    "chi2": pl.Float64(),
    "df": pl.Int64(),
    "p": pl.Float64(),
    "drifted": pl.Boolean(),
}


def anchor_drift(
    new: pl.DataFrame,
    previous: pl.DataFrame,
    *,
    overlap: pl.DataFrame | None = None,
    alpha: float = DRIFT_ALPHA,
    min_shift: float = DRIFT_MIN_SHIFT,
    min_responses: int = DRIFT_MIN_RESPONSES,
) -> pl.DataFrame:
    """Drift of the common items between last week's parameters and this week's, both on
    the linked scale: a Wald test of the change in a and b.

    ``z_b = (b_new - b_prev) / sd(b_new - b_prev)``, likewise ``z_a``; ``chi2 = z_a^2 + z_b^2``
    on 2 df (1 when the slope is not estimated, Rasch / 1PL: ``a_se`` 0), the covariance of
    a and b ignored. The two calibrations' windows overlap (11 of 12 weeks by default), so
    their estimates are correlated: with ``n_common`` responses in both windows the
    correlation is about ``rho = n_common / sqrt(n_new n_prev)`` (as for two means of nested
    samples) and ``var(new - prev) = se_new^2 + se_prev^2 - 2 rho se_new se_prev``. Without
    ``overlap`` rho is 0: the test is then conservative (fewer false alarms, less power).

    Args:
        new, previous: ``item_id`` (String), a, b, a_se, b_se, n_responses, flagged; only items
            unflagged in both, with finite b_se and at least ``min_responses`` responses in
            both, are tested.
        overlap: ``item_id``, ``n_common`` (responses of the item in both windows), or None.
        alpha: family-wise level; ``drifted``: rejected by Holm's step-down over the tested
            items *and* b moved at least ``min_shift`` logits or ln a at least ``min_shift``.

    Returns:
        ``DRIFT_SCHEMA``, one row per tested item (``shift_b``: b_new - b_prev, logits).
    """
    cols = ["item_id", "a", "b", "a_se", "b_se", "n_responses"]
    ok = ~pl.col("flagged") & pl.col("b_se").is_finite() & (pl.col("n_responses") >= min_responses)
    both = (
        new.filter(ok)
        .select(cols)
        .join(previous.filter(ok).select(cols), on="item_id", suffix="_prev")
    )
    if overlap is not None:
        both = both.join(overlap.select("item_id", "n_common"), on="item_id", how="left")
    else:
        both = both.with_columns(n_common=pl.lit(0, pl.Int64))
    if both.height == 0:
        return pl.DataFrame(schema=DRIFT_SCHEMA)
    n1 = both["n_responses"].to_numpy().astype(float)
    n2 = both["n_responses_prev"].to_numpy().astype(float)
    nc = both["n_common"].fill_null(0).to_numpy().astype(float)
    rho = np.clip(nc / np.sqrt(np.maximum(n1 * n2, 1.0)), 0.0, 0.999)

    def z(col: str) -> np.ndarray:
        s1 = both[f"{col}_se"].to_numpy()
        s2 = both[f"{col}_se_prev"].to_numpy()
        var = s1 * s1 + s2 * s2 - 2 * rho * s1 * s2
        # A floor against a 0/0 when the windows hold the same responses.
        var = np.maximum(var, 1e-6 * (s1 * s1 + s2 * s2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (both[col].to_numpy() - both[f"{col}_prev"].to_numpy()) / np.sqrt(var)

    z_b = z("b")
    slope = (both["a_se"].to_numpy() > 0) & (both["a_se_prev"].to_numpy() > 0)
    z_a = np.where(slope, z("a"), np.nan)
    stat = z_b**2 + np.nan_to_num(z_a) ** 2
    df = np.where(slope & np.isfinite(z_a), 2, 1)
    p = chi2.sf(stat, df)
    shift_b = both["b"].to_numpy() - both["b_prev"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        log_a = np.abs(np.log(both["a"].to_numpy() / both["a_prev"].to_numpy()))
    large = (np.abs(shift_b) >= min_shift) | (slope & (np.nan_to_num(log_a) >= min_shift))
    return pl.DataFrame(
        {
            "item_id": both["item_id"],
            "shift_b": shift_b,
            "z_a": z_a,
            "z_b": z_b,
            "chi2": stat,
            "df": df,
            "p": p,
            "drifted": holm(p, alpha) & large,
        },
        schema=DRIFT_SCHEMA,
    )


def holm(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm's step-down rejections (bool, same shape as ``p``) at family-wise level
    ``alpha``; NaN p-values are never rejected."""
    p = np.asarray(p, float)
    out = np.zeros(p.size, bool)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    for k, idx in enumerate(order):
        if p[idx] > alpha / (m - k):
            break
        out[idx] = True
    return out


#: Rounds of "link, test, drop the drifted" at most (it settles in 2-3 in practice).
ROBUST_ROUNDS = 5


def robust_link(
    new: pl.DataFrame,
    previous: pl.DataFrame,
    *,
    overlap: pl.DataFrame | None = None,
    alpha: float = DRIFT_ALPHA,
) -> tuple[Link, pl.DataFrame]:
    """Mean/sigma link without the drifted anchors: link on the common items, test their
    drift on the linked scale (:func:`anchor_drift`), link again without the drifted ones,
    until the drifted set stops changing (at most ``ROBUST_ROUNDS``).

    A drifted anchor (an item that got easier because it leaked, say) would otherwise pull
    the whole scale with it. Without SEs in both weeks nothing is tested: the plain link.

    Args:
        new: this week's parameters on their own scale, with SE columns (``a_se``, ``b_se``,
            ``d_se``, ``ad_cov``) for the test; previous: last week's stored ones with
            ``a_se``, ``b_se``; overlap, alpha: as :func:`anchor_drift`.

    Returns:
        (the link, with ``dropped`` the drifted items' ids; the last round's drift frame).
    """
    ids = pl.col("item_id").cast(pl.String)
    new = new.with_columns(ids)
    previous = previous.with_columns(ids)
    dropped: set[str] = set()
    link = mean_sigma_link(new, previous)
    testable = {"a_se", "b_se"} <= set(new.columns) and {"a_se", "b_se"} <= set(previous.columns)
    if not testable:
        return link, pl.DataFrame(schema=DRIFT_SCHEMA)
    drift = pl.DataFrame(schema=DRIFT_SCHEMA)
    for _ in range(ROBUST_ROUNDS):
        link = mean_sigma_link(new.filter(~pl.col("item_id").is_in(list(dropped))), previous)
        if link.identity and link.common < MIN_COMMON_ITEMS:
            break
        drift = anchor_drift(apply_link(new, link), previous, overlap=overlap, alpha=alpha)
        now = set(drift.filter(pl.col("drifted"))["item_id"].to_list())
        if now == dropped:
            break
        dropped = now
    return replace(link, dropped=tuple(sorted(dropped))), drift
