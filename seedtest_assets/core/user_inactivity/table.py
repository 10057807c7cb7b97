"""The owner of ``user_inactivity``: every statement against the daily inactivity rows."""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Connection, and_, func, select

from seedtest_assets.core.warehouse import replace_rows
from seedtest_assets.core.warehouse import schema as s

_U = s.user_inactivity

#: A ``user_inactivity`` frame: every column, in table order.
INACTIVITY_SCHEMA = s.polars_schema(_U)


def _in_days(start: date, end: date):
    return and_(_U.c.as_of_date >= start, _U.c.as_of_date < end)


def replace_days(conn: Connection, start: date, end: date, frame: pl.DataFrame) -> int:
    """Replace the rows of days ``[start, end)`` by ``frame`` (:data:`INACTIVITY_SCHEMA`) in
    the caller's transaction; returns the rows written."""
    return replace_rows(conn, _U, _in_days(start, end), frame)


def row_counts(conn: Connection, start: date, end: date) -> tuple[int, int]:
    """(rows of ``[start, end)``, of those the rows whose ``status`` contradicts
    ``days_inactive`` being null)."""
    in_range = _in_days(start, end)
    stored = conn.execute(select(func.count()).where(in_range)).scalar_one()
    bad = conn.execute(
        select(func.count()).where(
            in_range,
            (_U.c.days_inactive.is_(None)) != (_U.c.status == "never_active"),
        )
    ).scalar_one()
    return int(stored), int(bad)


def latest_status_counts(conn: Connection) -> tuple[date | None, dict[str, int]]:
    """The newest ``as_of_date`` and its students per ``status`` (None, {} when empty)."""
    last = conn.execute(select(func.max(_U.c.as_of_date))).scalar_one()
    counts = conn.execute(
        select(_U.c.status, func.count()).where(_U.c.as_of_date == last).group_by(_U.c.status)
    ).all()
    return last, {str(k): int(v) for k, v in counts}
