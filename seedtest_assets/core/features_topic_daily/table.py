"""The owner of ``features_topic_daily``: every statement against the daily features.

Writers: :func:`replace_days` (a range of days, in the caller's transaction). Readers: the
features' own history (``improvement``), the daily activity ``weekly_kpi`` and
``user_inactivity`` are computed from, the asset checks' aggregates. All take a connection
(the caller decides transactions) and bind every value.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Connection, Select, and_, func, select

from seedtest_assets.core.warehouse import read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s

_F = s.features_topic_daily

#: A ``features_topic_daily`` frame: every column, in table order.
FEATURES_SCHEMA = s.polars_schema(_F)
#: Columns of the per-day history ``improvement`` compares against (:func:`read_history`).
HISTORY_SCHEMA = s.polars_schema(_F, ["user_id", "topic_id", "date", "attempts", "correct"])
#: Daily activity per student (:func:`read_daily_activity`: summed over topics; the sums
#: keep the columns' integer kind).
ACTIVITY_SCHEMA = s.polars_schema(_F, ["user_id", "date", "attempts", "correct", "study_ms"])


def replace_days(
    conn: Connection, start: date, end: date, frame: pl.DataFrame, *, allow_empty: bool
) -> int:
    """Replace the rows of days ``[start, end)`` by ``frame`` (``FEATURES_SCHEMA``) in the
    caller's transaction; returns the rows written.

    ``allow_empty``: an empty ``frame`` may replace stored rows (days whose attempts were all
    quarantined); else :class:`~seedtest_assets.core.warehouse.db.EmptyReplaceError`.
    """
    where = and_(_F.c.date >= start, _F.c.date < end)
    return replace_rows(conn, _F, where, frame, allow_empty=allow_empty)


def read_history(conn: Connection, since: date, before: date, among: Select) -> pl.DataFrame:
    """``user_id, topic_id, date, attempts, correct`` of days ``[since, before)`` for the
    students ``among`` returns (a ``select`` of user ids, used as an ``IN`` subquery)."""
    stmt = select(_F.c.user_id, _F.c.topic_id, _F.c.date, _F.c.attempts, _F.c.correct).where(
        _F.c.date >= since,
        _F.c.date < before,
        _F.c.user_id.in_(among),
    )
    return read_frame(conn, stmt)


def read_daily_activity(conn: Connection, start: date, end: date) -> pl.DataFrame:
    """Daily activity per student over ``[start, end)``: ``user_id, date, attempts, correct,
    study_ms`` (ms), summed over topics in SQL, so only one row per active student-day
    travels."""
    stmt = (
        select(
            _F.c.user_id,
            _F.c.date,
            func.sum(_F.c.attempts).label("attempts"),
            func.sum(_F.c.correct).label("correct"),
            func.sum(_F.c.study_ms).label("study_ms"),
        )
        .where(_F.c.date >= start, _F.c.date < end)
        .group_by(_F.c.user_id, _F.c.date)
    )
    return read_frame(conn, stmt)


def read_last_attempt_before(conn: Connection, before: date) -> pl.DataFrame:
    """``user_id, last_attempt_at``: each student's latest valid attempt on days before
    ``before`` (naive UTC)."""
    stmt = (
        select(_F.c.user_id, func.max(_F.c.last_attempt_at).label("last_attempt_at"))
        .where(_F.c.date < before)
        .group_by(_F.c.user_id)
    )
    return read_frame(conn, stmt)


def read_daily_last_attempt(conn: Connection, start: date, end: date) -> pl.DataFrame:
    """``user_id, date, last_attempt_at``: per student and active day of ``[start, end)``,
    the day's latest valid attempt (naive UTC)."""
    stmt = (
        select(_F.c.user_id, _F.c.date, func.max(_F.c.last_attempt_at).label("last_attempt_at"))
        .where(_F.c.date >= start, _F.c.date < end)
        .group_by(_F.c.user_id, _F.c.date)
    )
    return read_frame(conn, stmt)


def active_users(start: date, end: date) -> Select:
    """A ``select`` of the students with features on days ``[start, end)``, each once (to use
    as a subquery)."""
    return select(_F.c.user_id).where(_F.c.date >= start, _F.c.date < end).group_by(_F.c.user_id)


def feature_stats(conn: Connection, start: date, end: date) -> dict[str, int]:
    """Aggregates over the rows of ``[start, end)`` for asset checks: ``rows``, summed
    ``attempts``, and the rows violating each range rule (``bad_accuracy``,
    ``correct_gt_attempts``, ``nonpositive_attempts``, ``negative_rt``, ``bad_improvement``)."""
    f = _F
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
    row = conn.execute(stmt).mappings().one()
    return {k: int(v) for k, v in row.items()}
