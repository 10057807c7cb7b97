"""Linking a new calibration's theta scale to last week's (no Dagster).

Mean/sigma linking on common items: with ``b`` of the items both calibrations estimated,
``A = sd(b_prev) / sd(b_new)`` and ``B = mean(b_prev) - A * mean(b_new)`` map the new scale
onto the previous one: ``theta' = A theta + B``, ``b' = A b + B``, ``a' = a / A``,
``d' = -a' b'``; ``c`` is unchanged. (Kolen & Brennan, *Test Equating*, ch. 6.)
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

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
    """``items`` (a, b, c, d) transformed onto the linked scale."""
    return items.with_columns(
        a=pl.col("a") / link.A,
        b=pl.col("b") * link.A + link.B,
    ).with_columns(d=-pl.col("a") * pl.col("b"))
