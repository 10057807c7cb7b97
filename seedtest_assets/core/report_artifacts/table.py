"""The owner of ``report_artifacts``: every statement against the stored-report records.

One row per stored file, keyed (week_start, user_id, format); written only after its upload
succeeded (``pipeline.record_artifacts``).
"""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Connection, and_, select

from seedtest_assets.core.warehouse import read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s

_R = s.report_artifacts

#: A ``report_artifacts`` frame: every column, in table order.
ARTIFACTS_SCHEMA = s.polars_schema(_R)
#: Keys per ``IN`` list: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
ID_CHUNK = 5000


def replace_keys(conn: Connection, week_start: date, frame: pl.DataFrame) -> int:
    """Replace the rows with the (week_start, user_id, format) keys of ``frame``
    (:data:`ARTIFACTS_SCHEMA`, all of ``week_start``) in the caller's transaction: the delete
    covers exactly the keys written. Returns the rows written."""
    written = 0
    for fmt in sorted(set(frame["format"])):
        part = frame.filter(pl.col("format") == fmt)
        ids = part["user_id"].to_list()
        for i in range(0, len(ids), ID_CHUNK):
            chunk = part.slice(i, ID_CHUNK)
            where = and_(
                _R.c.week_start == week_start,
                _R.c.format == fmt,
                _R.c.user_id.in_(chunk["user_id"].to_list()),
            )
            written += replace_rows(conn, _R, where, chunk)
    return written


def read_week(conn: Connection, week_start: date) -> pl.DataFrame:
    """The week's rows: ``user_id, format, url, file_size_bytes, sha256, generated_at``,
    ordered by student and format."""
    return read_frame(
        conn,
        select(
            _R.c.user_id,
            _R.c.format,
            _R.c.url,
            _R.c.file_size_bytes,
            _R.c.sha256,
            _R.c.generated_at,
        )
        .where(_R.c.week_start == week_start)
        .order_by(_R.c.user_id, _R.c.format),
    )
