"""``user_inactivity``: for each day and each registered student, how long since they practised.

``days_inactive`` is the number of whole UTC days between the student's last valid attempt
(on or before the day) and the day: 0 = practised that day. ``status``:

- ``active``: ``days_inactive < at_risk_after_days``
- ``at_risk``: ``at_risk_after_days <= days_inactive < inactive_after_days``
- ``inactive``: ``days_inactive >= inactive_after_days``
- ``never_active``: registered by the day but no valid attempt yet (``days_inactive`` null)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from seedtest_assets.core.user_inactivity.table import INACTIVITY_SCHEMA

STATUSES = ("active", "at_risk", "inactive", "never_active")


@dataclass(frozen=True)
class InactivityThresholds:
    """Day counts where a student turns ``at_risk`` and then ``inactive``."""

    at_risk_after_days: int = 7
    inactive_after_days: int = 14

    def __post_init__(self) -> None:
        if not 0 < self.at_risk_after_days < self.inactive_after_days:
            raise ValueError(
                "need 0 < at_risk_after_days < inactive_after_days, got "
                f"{self.at_risk_after_days} and {self.inactive_after_days}"
            )


def classify_inactivity(
    users: pl.DataFrame,
    activity_before: pl.DataFrame,
    activity: pl.DataFrame,
    *,
    start: date,
    end: date,
    computed_at: datetime,
    thresholds: InactivityThresholds | None = None,
) -> pl.DataFrame:
    """Inactivity rows for every registered student and every day in ``[start, end)``.

    Args:
        users: ``user_id``, ``created_at`` (naive UTC); a student counts from the day created.
        activity_before: ``user_id``, ``last_attempt_at``: the latest valid attempt strictly
            before ``start`` (at most one row per student).
        activity: ``user_id``, ``date``, ``last_attempt_at``: the latest valid attempt of each
            day in ``[start, end)`` per student (one row per student-day with activity).
        start, end: days to classify, end exclusive.
        computed_at: stamped on every row.
        thresholds: status boundaries in days.

    Returns:
        ``INACTIVITY_SCHEMA`` frame: one row per (day, registered student), sorted.
    """
    t = thresholds or InactivityThresholds()
    days = pl.date_range(start, end - timedelta(days=1), interval="1d", eager=True).alias(
        "as_of_date"
    )
    grid = (
        users.lazy()
        .select(pl.col("user_id").cast(pl.String), pl.col("created_at"))
        .join(days.to_frame().lazy(), how="cross")
        .filter(pl.col("created_at").dt.date() <= pl.col("as_of_date"))
        .select("user_id", "as_of_date")
        .sort("as_of_date")
    )
    # Latest activity on or before each day: as-of join within the range, then fall back to
    # the last activity before the range.
    in_range = (
        activity.lazy()
        .select(
            pl.col("user_id").cast(pl.String),
            pl.col("date").alias("activity_date"),
            pl.col("last_attempt_at").alias("last_in_range"),
        )
        .sort("activity_date")
    )
    before = activity_before.lazy().select(
        pl.col("user_id").cast(pl.String), pl.col("last_attempt_at").alias("last_before")
    )
    days_inactive = (pl.col("as_of_date") - pl.col("last_attempt_at").dt.date()).dt.total_days()
    out = (
        grid.join_asof(
            in_range,
            left_on="as_of_date",
            right_on="activity_date",
            by="user_id",
            strategy="backward",
            check_sortedness=False,  # sorted by the as-of key globally, hence within groups
        )
        .join(before, on="user_id", how="left")
        .with_columns(last_attempt_at=pl.coalesce("last_in_range", "last_before"))
        .with_columns(days_inactive=days_inactive.cast(pl.Int64))
        .with_columns(
            status=pl.when(pl.col("days_inactive").is_null())
            .then(pl.lit("never_active"))
            .when(pl.col("days_inactive") < t.at_risk_after_days)
            .then(pl.lit("active"))
            .when(pl.col("days_inactive") < t.inactive_after_days)
            .then(pl.lit("at_risk"))
            .otherwise(pl.lit("inactive")),
            computed_at=pl.lit(computed_at, dtype=pl.Datetime("us")),
        )
        .select(list(INACTIVITY_SCHEMA))
        .sort("as_of_date", "user_id")
        .collect()
    )
    return out.cast(INACTIVITY_SCHEMA)
