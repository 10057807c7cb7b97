"""The owner of ``exam_sessions``: the sensor's completed-session scan (Core, no Dagster).

Session ids are compared and ordered as text (``CAST(session_id AS TEXT)``), in the
database's collation: the same on an integer column and once ids are text, and the cursor
keeps the id as the text it compared (ties on ``completed_at`` are ordered by that text).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy import Connection, Text, and_, cast, func, or_, select

from seedtest_assets.core.source.relations import source_tables
from seedtest_assets.core.warehouse import read_frame


def read_completed_after(
    conn: Connection,
    completed_at: datetime | None,
    session_id: str,
    until: datetime,
    limit: int,
) -> pl.DataFrame:
    """At most ``limit`` sessions completed after the cursor ``(completed_at, session_id)``
    (None: from the start) and at or before ``until`` (naive UTC), in completion order, ties
    by id as text: ``session_id`` (text), ``user_id``, ``completed_at``."""
    t = source_tables().exam_sessions
    sid = cast(t.c.session_id, Text())
    cond = and_(t.c.completed_at.is_not(None), t.c.completed_at <= until)
    if completed_at is not None:
        c = completed_at
        # The leading ">=" lets the database range-scan the completed_at index.
        cond = and_(
            cond,
            t.c.completed_at >= c,
            or_(t.c.completed_at > c, sid > str(session_id)),
        )
    stmt = (
        select(sid.label("session_id"), t.c.user_id, t.c.completed_at)
        .where(cond)
        .order_by(t.c.completed_at, sid)
        .limit(limit)
    )
    return read_frame(conn, stmt)


def last_completed(conn: Connection, until: datetime) -> tuple[datetime | None, str]:
    """The newest completion at or before ``until`` and the highest session id (as text)
    completed then: ``(None, "")`` when no session has completed."""
    t = source_tables().exam_sessions
    done = conn.execute(
        select(func.max(t.c.completed_at)).where(t.c.completed_at <= until)
    ).scalar_one()
    if done is None:
        return None, ""
    top = conn.execute(
        select(func.max(cast(t.c.session_id, Text()))).where(t.c.completed_at == done)
    ).scalar_one()
    return done, "" if top is None else str(top)
