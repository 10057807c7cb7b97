"""``features_topic_daily``: per user x topic x day aggregates of valid attempts.

Columns (one row per student, topic and UTC day with at least one valid attempt):

- ``attempts``: valid attempts; ``correct``: of those, correct; ``accuracy`` = correct/attempts.
- ``rt_median``: median response time in milliseconds (mean of the two middle values for an
  even count, as PostgreSQL's ``percentile_cont(0.5)``).
- ``hints``: hints used, summed.
- ``improvement``: the day's accuracy minus the student's accuracy on the same topic over the
  previous ``IMPROVEMENT_LOOKBACK_DAYS`` days (attempt-weighted: total correct / total attempts
  over those days). In accuracy points, range [-1, 1]; null when the student made no attempt on
  that topic in those days. Positive = doing better than their recent self on the topic.
  The earlier days come from the stored features (the asset depends on its own previous 7
  partitions), so a day reads only its own attempts.
- ``last_attempt_at``: the latest valid attempt of that day (naive UTC), for inactivity.
- ``study_ms``: summed response times (milliseconds): the study time behind ``E_t``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import polars as pl

from seedtest_assets.core.features_topic_daily.table import FEATURES_SCHEMA, HISTORY_SCHEMA

IMPROVEMENT_LOOKBACK_DAYS = 7


def compute_features(
    valid: pl.DataFrame,
    *,
    start: date,
    end: date,
    computed_at: datetime,
    prior: pl.DataFrame | None = None,
    lookback_days: int = IMPROVEMENT_LOOKBACK_DAYS,
) -> pl.DataFrame:
    """Aggregate valid attempts into daily features for the days ``[start, end)``.

    Args:
        valid: validated attempts with at least ``user_id, topic_id, is_correct,
            response_time_ms, hints_used, attempted_at``; rows outside ``[start, end)`` are
            ignored.
        start, end: the output days, end exclusive.
        computed_at: stamped on every row (naive UTC).
        prior: the stored features of the days before ``start`` (``HISTORY_SCHEMA`` columns,
            at least ``lookback_days`` of them), so ``improvement`` needs no raw history.
            Days inside the range use the rows computed here.
        lookback_days: window of prior days for ``improvement``.

    Returns:
        A frame with ``FEATURES_SCHEMA`` columns, sorted by (date, user_id, topic_id).
    """
    lo = datetime.combine(start, time())
    hi = datetime.combine(end, time())
    out = (
        valid.lazy()
        .filter((pl.col("attempted_at") >= lo) & (pl.col("attempted_at") < hi))
        .with_columns(date=pl.col("attempted_at").dt.date())
        .group_by("user_id", "topic_id", "date")
        .agg(
            attempts=pl.len().cast(pl.Int64),
            correct=pl.col("is_correct").cast(pl.Int64).sum(),
            rt_median=pl.col("response_time_ms").cast(pl.Float64).median(),
            hints=pl.col("hints_used").cast(pl.Int64).sum(),
            last_attempt_at=pl.col("attempted_at").max(),
            study_ms=pl.col("response_time_ms").cast(pl.Int64).sum(),
        )
        .with_columns(pl.col("user_id").cast(pl.String), pl.col("topic_id").cast(pl.String))
    )
    earlier = (
        prior.lazy()
        .select(list(HISTORY_SCHEMA))
        .cast(HISTORY_SCHEMA)
        .filter(pl.col("date") < start)
        if prior is not None
        else pl.LazyFrame(schema=HISTORY_SCHEMA)
    )
    history = pl.concat([earlier, out.select(list(HISTORY_SCHEMA))]).rename(
        {"date": "prior_date", "attempts": "p_attempts", "correct": "p_correct"}
    )
    # Each output day joins the same student-topic's earlier days (at most `lookback_days`
    # partner rows each, so the join stays linear).
    prior_acc = (
        out.select("user_id", "topic_id", "date")
        .join(history, on=["user_id", "topic_id"], how="inner")
        .filter(
            (pl.col("prior_date") < pl.col("date"))
            & (pl.col("prior_date") >= pl.col("date") - timedelta(days=lookback_days))
        )
        .group_by("user_id", "topic_id", "date")
        .agg(p_attempts=pl.col("p_attempts").sum(), p_correct=pl.col("p_correct").sum())
    )
    result = (
        out.join(prior_acc, on=["user_id", "topic_id", "date"], how="left")
        .with_columns(accuracy=pl.col("correct") / pl.col("attempts"))
        .with_columns(
            improvement=pl.col("accuracy") - pl.col("p_correct") / pl.col("p_attempts"),
            computed_at=pl.lit(computed_at, dtype=pl.Datetime("us")),
        )
        .select(list(FEATURES_SCHEMA))
        .sort("date", "user_id", "topic_id")
        .collect()
    )
    return result.cast(FEATURES_SCHEMA)
