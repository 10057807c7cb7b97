"""The owner of ``attempt_rejects``: the quarantined attempts' records (Core, no Dagster).

Validation (:mod:`.validate`) makes the records (:data:`REJECTS_SCHEMA`); the daily features
run writes them for its days (:func:`replace_days`, in the same transaction as the features),
and the checks, the demo and the runbook read them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl
from sqlalchemy import Connection, and_, func, select

from seedtest_assets.core.warehouse import read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s

#: A reject record as validation makes it: the table's columns but ``rejected_at`` (stamped
#: when written). ``partition_date``: the UTC day that owns the row(s); ``rows``: how many
#: input rows the record stands for.
REJECTS_SCHEMA = s.polars_schema(
    s.attempt_rejects, [c.name for c in s.attempt_rejects.columns if c.name != "rejected_at"]
)


def _in_days(start: date, end: date):
    r = s.attempt_rejects
    return and_(r.c.partition_date >= start, r.c.partition_date < end)


def replace_days(conn: Connection, start: date, end: date, frame: pl.DataFrame) -> int:
    """Replace the records of days ``[start, end)`` by ``frame`` (:data:`REJECTS_SCHEMA` plus
    ``rejected_at``) in the caller's transaction; returns the rows written. No records is a
    valid outcome (rejects fixed upstream leave none)."""
    return replace_rows(conn, s.attempt_rejects, _in_days(start, end), frame, allow_empty=True)


def rejected_rows(
    conn: Connection, start: date, end: date, duplicate_reasons: Sequence[str]
) -> int:
    """Input rows represented by the records of ``[start, end)``: records of
    ``duplicate_reasons`` count the copies they removed (``rows``); the others count each
    attempt once however many reasons it had."""
    r = s.attempt_rejects
    in_range = _in_days(start, end)
    is_dup = r.c.reason.in_(list(duplicate_reasons))
    dup = conn.execute(
        select(func.coalesce(func.sum(r.c.rows), 0)).where(in_range, is_dup)
    ).scalar_one()
    single = conn.execute(
        select(func.count(func.distinct(r.c.attempt_id))).where(in_range, ~is_dup)
    ).scalar_one()
    return int(dup) + int(single)


def attempts_with_reasons(conn: Connection, start: date, end: date, reasons: Sequence[str]) -> int:
    """Distinct attempts of ``[start, end)`` quarantined for any of ``reasons``."""
    r = s.attempt_rejects
    return int(
        conn.execute(
            select(func.count(func.distinct(r.c.attempt_id))).where(
                r.c.partition_date >= start,
                r.c.partition_date < end,
                r.c.reason.in_(list(reasons)),
            )
        ).scalar_one()
    )


def read_records(conn: Connection, start: date, end: date, limit: int = 20) -> pl.DataFrame:
    """``partition_date, attempt_id, reason, detail`` of at most ``limit`` records of
    ``[start, end)``, newest ids first."""
    r = s.attempt_rejects
    stmt = (
        select(r.c.partition_date, r.c.attempt_id, r.c.reason, r.c.detail)
        .where(r.c.partition_date >= start, r.c.partition_date < end)
        .order_by(r.c.attempt_id.desc())
        .limit(limit)
    )
    return read_frame(conn, stmt)


def rows_by_reason(conn: Connection) -> dict[str, int]:
    """Input rows quarantined per reason, over the whole table (summed ``rows``)."""
    r = s.attempt_rejects
    stmt = select(r.c.reason, func.sum(r.c.rows)).group_by(r.c.reason)
    return {str(k): int(v) for k, v in conn.execute(stmt).all()}
