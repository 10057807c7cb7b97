"""The owner of ``mirt_ability`` (and its view ``mirt_ability_latest``): every statement
against the stored abilities.

``mirt_ability`` is append-only history: weekly batches replace their week's ``weekly`` rows
(:func:`replace_weekly`), re-scores append (:func:`append`). Every reader of "the" θ of a
student-week reads the ``weekly`` row (:func:`read_weekly`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, RowMapping, and_, column, func, select, table

from seedtest_assets.core.warehouse import insert_frame, read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s

_A = s.mirt_ability

#: The rows a scoring writes: every column but the auto-increment ``ability_id``, in table
#: order.
ROWS_SCHEMA = s.polars_schema(_A, [c.name for c in _A.columns if c.name != "ability_id"])

#: The fields of a stored θ (:func:`read_stored_theta`).
THETA_FIELDS = ("user_id", "week_start", "theta", "se", "model", "version", "source", "fitted_at")

#: The view of each student's newest row (columns typed as in ``mirt_ability``).
mirt_ability_latest = table(
    "mirt_ability_latest", *(column(name, _A.c[name].type) for name in THETA_FIELDS)
)

_ID_CHUNK = 5000


def _weekly(week_start: date):
    return and_(_A.c.week_start == week_start, _A.c.source == "weekly")


def replace_weekly(conn: Connection, week_start: date, frame: pl.DataFrame) -> int:
    """Replace the week's ``weekly`` rows by ``frame`` (:data:`ROWS_SCHEMA`) in the caller's
    transaction; returns the rows written."""
    return replace_rows(conn, _A, _weekly(week_start), frame)


def append(conn: Connection, frame: pl.DataFrame) -> int:
    """Append re-score rows (:data:`ROWS_SCHEMA`) in the caller's transaction (a few rows:
    an ``INSERT``, not a COPY, on PostgreSQL)."""
    return insert_frame(conn, _A, frame, few_rows=True)


def count_weekly(conn: Connection, week_start: date) -> int:
    """The week's ``weekly`` rows."""
    return int(
        conn.execute(select(func.count()).select_from(_A).where(_weekly(week_start))).scalar_one()
    )


def latest_weekly_week(conn: Connection, on_or_before: date) -> date | None:
    """The newest week with ``weekly`` rows, on or before ``on_or_before``."""
    return conn.execute(
        select(func.max(_A.c.week_start)).where(
            _A.c.source == "weekly", _A.c.week_start <= on_or_before
        )
    ).scalar_one()


def read_weekly(
    conn: Connection,
    week_start: date,
    columns: Sequence[str],
    user_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The ``columns`` of the week's ``weekly`` rows (of ``user_ids``, if given: bound in
    chunks of 5,000)."""
    cols = [_A.c[c] for c in columns]
    if user_ids is None:
        return read_frame(conn, select(*cols).where(_weekly(week_start)))
    ids = [str(u) for u in user_ids]
    frames = [
        read_frame(
            conn,
            select(*cols).where(_weekly(week_start), _A.c.user_id.in_(ids[i : i + _ID_CHUNK])),
        )
        for i in range(0, len(ids), _ID_CHUNK)
    ]
    return pl.concat(frames) if frames else pl.DataFrame(schema=s.polars_schema(_A, columns))


def read_weekly_history(
    conn: Connection, week_start: date, weeks: int, user_ids: Sequence[str]
) -> pl.DataFrame:
    """``user_id, week_start, theta, se, growth`` of the ``weekly`` rows of the ``weeks``
    weeks ending with ``week_start``'s, of ``user_ids`` (bound in chunks of 5,000); rows in
    database order, possibly none."""
    ids = [str(u) for u in user_ids]
    frames = []
    for i in range(0, len(ids), _ID_CHUNK):
        stmt = select(_A.c.user_id, _A.c.week_start, _A.c.theta, _A.c.se, _A.c.growth).where(
            _A.c.source == "weekly",
            _A.c.week_start <= week_start,
            _A.c.week_start > week_start - timedelta(weeks=weeks),
            _A.c.user_id.in_(ids[i : i + _ID_CHUNK]),
        )
        frames.append(read_frame(conn, stmt))
    return pl.concat(frames) if frames else pl.DataFrame()


def weekly_moments(conn: Connection, week_start: date) -> tuple[Any, ...]:
    """Over the week's ``weekly`` rows with a growth fit: (count, mean θ, mean θ² + se²,
    mean growth, mean growth² + growth_se²); the means are None without rows."""
    stmt = select(
        func.count(),
        func.avg(_A.c.theta),
        func.avg(_A.c.theta * _A.c.theta + _A.c.se * _A.c.se),
        func.avg(_A.c.growth),
        func.avg(_A.c.growth * _A.c.growth + _A.c.growth_se * _A.c.growth_se),
    ).where(_weekly(week_start), _A.c.growth.is_not(None))
    return tuple(conn.execute(stmt).one())


def duplicate_weekly_users(conn: Connection, week_start: date, limit: int = 1000) -> list[str]:
    """Students with more than one ``weekly`` row for the week (at most ``limit``)."""
    stmt = (
        select(_A.c.user_id)
        .where(_weekly(week_start))
        .group_by(_A.c.user_id)
        .having(func.count() > 1)
        .limit(limit)
    )
    return [str(u) for u in conn.execute(stmt).scalars()]


def read_stored_theta(
    conn: Connection, user_id: str, week_start: date | None = None
) -> RowMapping | None:
    """The :data:`THETA_FIELDS` of the student's ``weekly`` row of ``week_start`` (the newest,
    should there be several), or (``None``) of their current row (the view
    ``mirt_ability_latest``); None: no row."""
    if week_start is None:
        v = mirt_ability_latest.c
        stmt = select(*(v[f] for f in THETA_FIELDS)).where(v.user_id == user_id)
    else:
        t = _A.c
        stmt = (
            select(*(t[f] for f in THETA_FIELDS))
            .where(t.user_id == user_id, t.week_start == week_start, t.source == "weekly")
            .order_by(t.fitted_at.desc(), t.ability_id.desc())
            .limit(1)
        )
    return conn.execute(stmt).mappings().first()
