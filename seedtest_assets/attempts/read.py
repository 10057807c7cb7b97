"""Reading raw attempts from the warehouse for a time window (Core statements, no Dagster)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time

import polars as pl
from sqlalchemy import Engine, Select, and_, select

from seedtest_assets.attempts.validate import ValidationLimits, validate_attempts
from seedtest_assets.warehouse import read_frame
from seedtest_assets.warehouse import schema as s


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """``[start, end)`` days as naive-UTC datetimes."""
    return datetime.combine(start, time()), datetime.combine(end, time())


def attempts_window_select(start: date, end: date, user_ids: Sequence[int] | None = None) -> Select:
    """Raw attempts with ``attempted_at`` in ``[start, end)`` plus the lookups validation needs.

    ``user_known`` and ``item_topic_id`` come from outer joins so the database does the
    membership tests and only the attempt rows travel.
    """
    lo, hi = day_bounds(start, end)
    a = s.attempts
    stmt = (
        select(
            a.c.id,
            a.c.user_id,
            a.c.session_id,
            a.c.item_id,
            a.c.topic_id,
            a.c.is_correct,
            a.c.response_time_ms,
            a.c.hints_used,
            a.c.attempted_at,
            s.users.c.user_id.is_not(None).label("user_known"),
            s.items.c.topic_id.label("item_topic_id"),
        )
        .select_from(
            a.outerjoin(s.users, s.users.c.user_id == a.c.user_id).outerjoin(
                s.items, s.items.c.item_id == a.c.item_id
            )
        )
        .where(and_(a.c.attempted_at >= lo, a.c.attempted_at < hi))
    )
    if user_ids is not None:  # bound as an expanding IN list, never formatted into SQL
        stmt = stmt.where(a.c.user_id.in_([int(u) for u in user_ids]))
    return stmt


def read_valid_attempts(
    engine: Engine,
    start: date,
    end: date,
    *,
    now: datetime,
    limits: ValidationLimits | None = None,
    user_ids: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Attempts in ``[start, end)`` (of ``user_ids`` if given) that pass validation.

    Calibration and scoring use this rather than trusting the raw feed; the rejects themselves
    are recorded by the daily features, not here.
    """
    with engine.connect() as conn:
        raw = read_frame(conn, attempts_window_select(start, end, user_ids))
    return validate_attempts(raw, now=now, limits=limits).valid
