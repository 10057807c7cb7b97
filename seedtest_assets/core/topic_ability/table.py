"""The ``topic_ability`` table's owner: the only module with SQL against it (no Dagster).

Rows are keyed (week_start, user_id, topic_id): :func:`replace_week` deletes the week and
inserts the new rows in the caller's transaction (a re-run replaces, never duplicates);
:func:`read_topic_ability` is what the weekly reports read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl
from sqlalchemy import Connection, func, select

from seedtest_assets.core.warehouse import read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.schema import FrameSchema

TABLE = s.topic_ability
#: Ids per IN list: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
ID_CHUNK = 5000

#: The table's columns as a frame (what the pipeline computes and the reader returns).
ROWS_SCHEMA: FrameSchema = {
    "week_start": pl.Date(),
    "user_id": pl.String(),
    "topic_id": pl.String(),
    "theta": pl.Float64(),
    "se": pl.Float64(),
    "n_responses": pl.Int64(),
    "model": pl.String(),
    "version": pl.String(),
    "fitted_at": pl.Datetime("us"),
}


def replace_week(conn: Connection, week_start: date, rows: pl.DataFrame) -> int:
    """Replace the week's rows with ``rows`` (``ROWS_SCHEMA``) in the caller's transaction.

    Raises :class:`~seedtest_assets.core.warehouse.db.EmptyReplaceError` (nothing changed) if
    ``rows`` is empty but the week has stored rows.
    """
    bad = rows.filter(pl.col("week_start") != week_start).height
    if bad:
        raise ValueError(f"{bad} rows are not of week {week_start}")
    return replace_rows(conn, TABLE, TABLE.c.week_start == week_start, rows)


def read_topic_ability(
    conn: Connection, week_start: date, user_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """The week's rows (of ``user_ids`` if given; None = all), ``ROWS_SCHEMA`` columns,
    ordered by student and topic. Empty (typed) when the week has none."""
    cols = [TABLE.c[name] for name in ROWS_SCHEMA]
    base = select(*cols).where(TABLE.c.week_start == week_start)
    if user_ids is None:
        frames = [read_frame(conn, base)]
    else:
        ids = [str(u) for u in user_ids]
        frames = [
            read_frame(conn, base.where(TABLE.c.user_id.in_(ids[i : i + ID_CHUNK])))
            for i in range(0, len(ids), ID_CHUNK)
        ]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=ROWS_SCHEMA)
    return pl.concat(frames).cast(ROWS_SCHEMA).sort("user_id", "topic_id")


def week_rows(conn: Connection, week_start: date) -> int:
    """How many rows the week has (0: never materialized, or a week without data)."""
    return conn.execute(
        select(func.count()).select_from(TABLE).where(TABLE.c.week_start == week_start)
    ).scalar_one()


def duplicate_keys(conn: Connection, week_start: date, limit: int = 1000) -> list[str]:
    """``user_id/topic_id`` keys with more than one row in the week (must be none)."""
    stmt = (
        select(TABLE.c.user_id, TABLE.c.topic_id)
        .where(TABLE.c.week_start == week_start)
        .group_by(TABLE.c.user_id, TABLE.c.topic_id)
        .having(func.count() > 1)
        .limit(limit)
    )
    return [f"{u}/{t}" for u, t in conn.execute(stmt)]
