"""Read -> validate -> compute -> write for a range of days (plain Python, no Dagster).

The Dagster asset and the benchmark both call :func:`materialize_features`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine, and_, func, select

from seedtest_assets.core.attempts import ValidationLimits, validate_attempts
from seedtest_assets.core.attempts.read import in_days, read_other_copies, read_window
from seedtest_assets.core.attempts.validate import (
    DUPLICATE_REASONS,
    STUDENT_DAY_REASONS,
    STUDENT_DAYS_SCHEMA,
)
from seedtest_assets.core.features_topic_daily.compute import (
    IMPROVEMENT_LOOKBACK_DAYS,
    compute_features,
)
from seedtest_assets.core.warehouse import read_frame, replace_rows, transaction
from seedtest_assets.core.warehouse import schema as s


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
    f = s.features_topic_daily
    a = s.attempts
    # History only for students active in the range: the others get no feature rows.
    active = select(a.c.user_id).where(in_days(a, start, end))
    history = select(f.c.user_id, f.c.topic_id, f.c.date, f.c.attempts, f.c.correct).where(
        f.c.date >= start - timedelta(days=lookback_days),
        f.c.date < start,
        f.c.user_id.in_(active),
    )

    def read(fn, *args):
        with engine.connect() as conn:
            return fn(conn, *args)

    t0 = time.perf_counter()
    # The reads are independent: overlap them on their own connections.
    with ThreadPoolExecutor(max_workers=3) as pool:
        raw_future = pool.submit(read, read_window, start, end)
        others_future = pool.submit(read, read_other_copies, start, end)
        prior = pool.submit(read, read_frame, history).result()
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
    rejects = checked.rejects.with_columns(rejected_at=pl.lit(now, dtype=pl.Datetime("us")))
    source_rows, valid_rows = raw.height, checked.valid.height
    t_compute = time.perf_counter()

    with transaction(engine) as conn:
        # Days whose attempts were all quarantined legitimately have no features; days whose
        # source rows vanished must not lose their stored features (EmptyReplaceError).
        replace_rows(
            conn,
            f,
            and_(f.c.date >= start, f.c.date < end),
            features,
            allow_empty=raw.height > 0,
        )
        replace_rows(
            conn,
            s.attempt_rejects,
            and_(
                s.attempt_rejects.c.partition_date >= start,
                s.attempt_rejects.c.partition_date < end,
            ),
            rejects,
            allow_empty=True,  # rejects fixed upstream leave none: that is the goal
        )
    t_write = time.perf_counter()

    by_reason = dict(rejects.group_by("reason").agg(pl.col("rows").sum()).iter_rows())
    return FeaturesRun(
        start=start,
        end=end,
        source_rows=source_rows,
        valid_rows=valid_rows,
        rejected_rows=source_rows - valid_rows,
        feature_rows=features.height,
        rejects_by_reason={k: int(v) for k, v in sorted(by_reason.items())},
        student_days=checked.student_days,
        seconds={
            "read": t_read - t0,
            "compute": t_compute - t_read,
            "write": t_write - t_compute,
        },
    )


def stored_feature_stats(engine: Engine, start: date, end: date) -> dict[str, float | int]:
    """Aggregates over stored features for ``[start, end)``, for asset checks.

    Returns counts of rows, summed attempts, and rows violating each range rule.
    """
    f = s.features_topic_daily
    in_range = and_(f.c.date >= start, f.c.date < end)
    stmt = select(
        func.count().label("rows"),
        func.coalesce(func.sum(f.c.attempts), 0).label("attempts"),
        func.count().filter((f.c.accuracy < 0) | (f.c.accuracy > 1)).label("bad_accuracy"),
        func.count().filter(f.c.correct > f.c.attempts).label("correct_gt_attempts"),
        func.count().filter(f.c.attempts <= 0).label("nonpositive_attempts"),
        func.count().filter(f.c.rt_median < 0).label("negative_rt"),
        func.count()
        .filter((f.c.improvement < -1) | (f.c.improvement > 1))
        .label("bad_improvement"),
    ).where(in_range)
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().one()
    return {k: int(v) for k, v in row.items()}


def stored_rejected_rows(engine: Engine, start: date, end: date) -> int:
    """Input rows represented by stored rejects for ``[start, end)``.

    Duplicate records carry the number of copies they removed; other reasons count each
    attempt once however many reasons it had.
    """
    r = s.attempt_rejects
    in_range = and_(r.c.partition_date >= start, r.c.partition_date < end)
    is_dup = r.c.reason.in_(DUPLICATE_REASONS)
    with engine.connect() as conn:
        dup = conn.execute(
            select(func.coalesce(func.sum(r.c.rows), 0)).where(in_range, is_dup)
        ).scalar_one()
        single = conn.execute(
            select(func.count(func.distinct(r.c.attempt_id))).where(in_range, ~is_dup)
        ).scalar_one()
    return int(dup) + int(single)


def stored_student_day_rejects(engine: Engine, start: date, end: date) -> int:
    """Attempts of ``[start, end)`` quarantined by the per-student-day plausibility limits."""
    r = s.attempt_rejects
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count(func.distinct(r.c.attempt_id))).where(
                    r.c.partition_date >= start,
                    r.c.partition_date < end,
                    r.c.reason.in_(STUDENT_DAY_REASONS),
                )
            ).scalar_one()
        )


def source_row_count(engine: Engine, start: date, end: date) -> int:
    """Raw attempts the days ``[start, end)`` own (see ``attempts.read.in_days``)."""
    a = s.attempts
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(in_days(a, start, end))).scalar_one())


def stored_rejects(engine: Engine, start: date, end: date, limit: int = 20) -> pl.DataFrame:
    """Stored reject records for ``[start, end)`` (at most ``limit``), newest ids first."""
    r = s.attempt_rejects
    stmt = (
        select(r.c.partition_date, r.c.attempt_id, r.c.reason, r.c.detail)
        .where(r.c.partition_date >= start, r.c.partition_date < end)
        .order_by(r.c.attempt_id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return read_frame(conn, stmt)
