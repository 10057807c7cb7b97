"""The owner of ``weekly_kpi``: every statement against the stored KPIs.

One row per (week, student): ``kpis`` is a JSON object holding the wide frame's columns but
``week_start`` and ``user_id`` (``compute.KPI_SCHEMA``). :func:`read_kpis` is the one reader
(the week's KPI rows, of some students or all): :func:`kpis_by_user` turns its rows into the
decoded objects the reports and their verification use, ``pipeline.stored_kpis`` into
columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Connection, Select, and_, func, select

from seedtest_assets.core.warehouse import read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s

_K = s.weekly_kpi
_ID_CHUNK = 5000

#: The key columns of the wide KPI frame (the rest is the ``kpis`` JSON's payload).
KEY_SCHEMA = s.polars_schema(_K, ["week_start", "user_id"])
#: The rows :func:`read_kpis` returns: ``kpis`` as its JSON text.
READ_SCHEMA = s.polars_schema(_K, ["user_id", "kpis", "updated_at"])


def replace_week(conn: Connection, week_start: date, frame: pl.DataFrame) -> int:
    """Replace the week's rows by ``frame`` (``week_start, user_id, kpis`` JSON text,
    ``updated_at``) in the caller's transaction; returns the rows written."""
    return replace_rows(conn, _K, _K.c.week_start == week_start, frame)


def read_kpis(
    conn: Connection, week_start: date, user_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """The week's rows (of ``user_ids`` if given, bound in chunks of 5,000), as
    :data:`READ_SCHEMA`: ``user_id``, ``kpis`` (JSON text of an object), ``updated_at``."""
    cols = (_K.c.user_id, _K.c.kpis, _K.c.updated_at)
    if user_ids is None:
        return read_frame(conn, select(*cols).where(_K.c.week_start == week_start))
    ids = [str(u) for u in user_ids]
    frames = [
        read_frame(
            conn,
            select(*cols).where(
                _K.c.week_start == week_start, _K.c.user_id.in_(ids[i : i + _ID_CHUNK])
            ),
        )
        for i in range(0, len(ids), _ID_CHUNK)
    ]
    return pl.concat(frames) if frames else pl.DataFrame(schema=READ_SCHEMA)


def kpis_by_user(rows: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """``user_id`` -> the decoded ``kpis`` object of :func:`read_kpis`' rows (a value that is
    not an object, which the writer refuses, decodes to ``{}``)."""
    out: dict[str, dict[str, Any]] = {}
    for uid, raw in zip(rows["user_id"].to_list(), rows["kpis"].to_list(), strict=True):
        value = json.loads(raw) if raw is not None else None
        out[str(uid)] = dict(value) if isinstance(value, dict) else {}
    return out


def missing_users(conn: Connection, week_start: date, among: Select) -> tuple[int, list[str]]:
    """The students ``among`` returns (a ``select`` of distinct user ids) without a row for
    the week, counted in the warehouse: (count, up to 10 sample ids)."""
    active = among.subquery()
    missing = (
        select(active.c.user_id)
        .select_from(
            active.outerjoin(
                _K, and_(_K.c.user_id == active.c.user_id, _K.c.week_start == week_start)
            )
        )
        .where(_K.c.user_id.is_(None))
    )
    n = conn.execute(select(func.count()).select_from(missing.subquery())).scalar_one()
    sample = conn.execute(missing.limit(10)).scalars().all()
    return int(n), [str(v) for v in sample]
