"""Read -> validate -> compute -> write for a range of days (plain Python, no Dagster).

The Dagster asset and the benchmark both call :func:`materialize_features`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.attempts import ValidationLimits, rejects, validate_attempts
from seedtest_assets.core.attempts.validate import (
    DUPLICATE_REASONS,
    STUDENT_DAY_REASONS,
    STUDENT_DAYS_SCHEMA,
)
from seedtest_assets.core.features_topic_daily import table
from seedtest_assets.core.features_topic_daily.compute import (
    IMPROVEMENT_LOOKBACK_DAYS,
    compute_features,
)
from seedtest_assets.core.source import attempts
from seedtest_assets.core.warehouse import transaction


@dataclass
class FeaturesRun:
    """What one materialization of ``[start, end)`` read, rejected and wrote."""

    start: date
    end: date
    source_rows: int  # raw attempts in [start, end)
    valid_rows: int
    rejected_rows: int
    feature_rows: int
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    #: student-days beyond the plausibility limits (all their attempts quarantined)
    student_days: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=STUDENT_DAYS_SCHEMA)
    )
    seconds: dict[str, float] = field(default_factory=dict)


def materialize_features(
    engine: Engine,
    start: date,
    end: date,
    *,
    now: datetime,
    limits: ValidationLimits | None = None,
    lookback_days: int = IMPROVEMENT_LOOKBACK_DAYS,
) -> FeaturesRun:
    """Compute and store ``features_topic_daily`` and ``attempt_rejects`` for days ``[start, end)``.

    Both tables' rows for those days are replaced in one transaction, so a re-run replaces
    and a failure leaves the previous state. ``improvement`` reads the stored features of the
    ``lookback_days`` days before ``start``.

    Args:
        engine: the warehouse.
        start, end: days (UTC), end exclusive.
        now: validation time (naive UTC); later timestamps are rejected as future.
        limits: validation thresholds.
        lookback_days: prior days of stored features read for ``improvement``.
    """
    # History only for students active in the range: the others get no feature rows.
    active = attempts.users_with_attempts(start, end)

    def read(fn, *args):
        with engine.connect() as conn:
            return fn(conn, *args)

    t0 = time.perf_counter()
    # The reads are independent: overlap them on their own connections.
    with ThreadPoolExecutor(max_workers=3) as pool:
        raw_future = pool.submit(read, attempts.read_window, start, end)
        others_future = pool.submit(read, attempts.read_other_copies, start, end)
        since = start - timedelta(days=lookback_days)
        prior = pool.submit(read, table.read_history, since, start, active).result()
        raw, others = raw_future.result(), others_future.result()
    t_read = time.perf_counter()

    checked = validate_attempts(
        raw, now=now, limits=limits, window=(start, end), other_copies=others
    )
    features = compute_features(
        checked.valid,
        start=start,
        end=end,
        computed_at=now,
        prior=prior,
        lookback_days=lookback_days,
    )
    # Every record carries the day that owns its row(s): each copy of an id under its own.
    rejects_frame = checked.rejects.with_columns(rejected_at=pl.lit(now, dtype=pl.Datetime("us")))
    source_rows, valid_rows = raw.height, checked.valid.height
    t_compute = time.perf_counter()

    with transaction(engine) as conn:
        # Days whose attempts were all quarantined legitimately have no features; days whose
        # source rows vanished must not lose their stored features (EmptyReplaceError).
        table.replace_days(conn, start, end, features, allow_empty=raw.height > 0)
        rejects.replace_days(conn, start, end, rejects_frame)
    t_write = time.perf_counter()

    by_reason = dict(rejects_frame.group_by("reason").agg(pl.col("rows").sum()).iter_rows())
    return FeaturesRun(
        start=start,
        end=end,
        source_rows=source_rows,
        valid_rows=valid_rows,
        rejected_rows=source_rows - valid_rows,
        feature_rows=features.height,
        rejects_by_reason={k: int(v) for k, v in sorted(by_reason.items())},
        student_days=(
            checked.student_days
            if checked.student_days is not None
            else pl.DataFrame(schema=STUDENT_DAYS_SCHEMA)
        ),
        seconds={
            "read": t_read - t0,
            "compute": t_compute - t_read,
            "write": t_write - t_compute,
        },
    )


def stored_feature_stats(engine: Engine, start: date, end: date) -> dict[str, float | int]:
    """Aggregates over stored features for ``[start, end)``, for asset checks.

    Returns counts of rows, summed attempts, and rows violating each range rule
    (:func:`.table.feature_stats`).
    """
    with engine.connect() as conn:
        return dict(table.feature_stats(conn, start, end))


def stored_rejected_rows(engine: Engine, start: date, end: date) -> int:
    """Input rows represented by stored rejects for ``[start, end)``.

    Duplicate records carry the number of copies they removed; other reasons count each
    attempt once however many reasons it had.
    """
    with engine.connect() as conn:
        return rejects.rejected_rows(conn, start, end, DUPLICATE_REASONS)


def stored_student_day_rejects(engine: Engine, start: date, end: date) -> int:
    """Attempts of ``[start, end)`` quarantined by the per-student-day plausibility limits."""
    with engine.connect() as conn:
        return rejects.attempts_with_reasons(conn, start, end, STUDENT_DAY_REASONS)


def source_row_count(engine: Engine, start: date, end: date) -> int:
    """Raw attempts the days ``[start, end)`` own (see ``source.attempts.in_days``)."""
    with engine.connect() as conn:
        return attempts.count_owned(conn, start, end)


def stored_rejects(engine: Engine, start: date, end: date, limit: int = 20) -> pl.DataFrame:
    """Stored reject records for ``[start, end)`` (at most ``limit``), newest ids first."""
    with engine.connect() as conn:
        return rejects.read_records(conn, start, end, limit)
