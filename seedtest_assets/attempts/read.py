"""Reading raw attempts from the warehouse for a time window (Core statements, no Dagster)."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Select, and_, select

from seedtest_assets.warehouse import schema as s


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """``[start, end)`` days as naive-UTC datetimes."""
    return datetime.combine(start, time()), datetime.combine(end, time())


def attempts_window_select(start: date, end: date) -> Select:
    """Raw attempts with ``attempted_at`` in ``[start, end)`` plus the lookups validation needs.

    ``user_known`` and ``item_topic_id`` come from outer joins so the database does the
    membership tests and only the attempt rows travel.
    """
    lo, hi = day_bounds(start, end)
    a = s.attempts
    return (
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
