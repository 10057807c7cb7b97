"""The owner of ``item_quality``: every statement against the stored item assessments."""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Connection, and_, select

from seedtest_assets.core.warehouse import read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s

_T = s.item_quality

#: An ``item_quality`` frame as written: every column.
ROWS_SCHEMA = s.polars_schema(_T)


def replace_week(conn: Connection, week_start: date, model: str, frame: pl.DataFrame) -> int:
    """Replace the week's rows of ``model`` by ``frame`` (:data:`ROWS_SCHEMA`) in the caller's
    transaction; returns the rows written."""
    where = and_(_T.c.week_start == week_start, _T.c.model == model)
    return replace_rows(conn, _T, where, frame)


def read_week(conn: Connection, week_start: date, model: str) -> pl.DataFrame:
    """The week's stored rows of ``model`` (:data:`ROWS_SCHEMA`; empty if none)."""
    stmt = select(_T).where(_T.c.week_start == week_start, _T.c.model == model)
    frame = read_frame(conn, stmt)
    return frame if frame.height else pl.DataFrame(schema=ROWS_SCHEMA)
