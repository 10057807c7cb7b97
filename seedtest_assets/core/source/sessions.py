"""The owner of ``exam_sessions``: the sensor's completed-session scan (Core, no Dagster)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy import Connection, and_, func, or_, select

from seedtest_assets.core.source.relations import source_tables
from seedtest_assets.core.warehouse import read_frame


def read_completed_after(
    conn: Connection,
    completed_at: datetime | None,
    session_id: int,
    until: datetime,
    limit: int,
) -> pl.DataFrame:
    """At most ``limit`` sessions completed after the cursor ``(completed_at, session_id)``
    (None: from the start) and at or before ``until`` (naive UTC), in completion order:
    ``session_id, user_id, completed_at``."""
    t = source_tables().exam_sessions
    cond = and_(t.c.completed_at.is_not(None), t.c.completed_at <= until)
    if completed_at is not None:
        c = completed_at
        # The leading ">=" lets the database range-scan the completed_at index.
        cond = and_(
            cond,
            t.c.completed_at >= c,
            or_(t.c.completed_at > c, t.c.session_id > session_id),
        )
    stmt = (
        select(t.c.session_id, t.c.user_id, t.c.completed_at)
        .where(cond)
        .order_by(t.c.completed_at, t.c.session_id)
        .limit(limit)
    )
    return read_frame(conn, stmt)


def last_completed(conn: Connection, until: datetime) -> tuple[datetime | None, int]:
    """The newest completion at or before ``until`` and the highest session id completed
    then: ``(None, 0)`` when no session has completed."""
    t = source_tables().exam_sessions
    done = conn.execute(
        select(func.max(t.c.completed_at)).where(t.c.completed_at <= until)
    ).scalar_one()
    sid = 0
    if done is not None:
        sid = conn.execute(
            select(func.max(t.c.session_id)).where(t.c.completed_at == done)
        ).scalar_one()
    return done, int(sid or 0)
