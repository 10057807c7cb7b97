"""The owner of ``users`` and ``organizations``: students, their goals and organisations
(Core statements with bound parameters, no Dagster)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl
from sqlalchemy import Connection, Select, and_, func, select, true

from seedtest_assets.core.source.relations import read_column, source_tables
from seedtest_assets.core.warehouse import read_frame
from seedtest_assets.core.warehouse import schema as s

#: ``user_id, goal_theta, goal_date``: a student's goal (theta scale; the day to reach it).
GOALS_SCHEMA = s.polars_schema(s.users, ["user_id", "goal_theta", "goal_date"])


def existing(conn: Connection, column: str, ids: Sequence[str]) -> set[str]:
    """The values of ``ids`` found in ``users.<column>``: ``user_id`` (students) or ``org_id``
    (organisations that have students)."""
    if column not in ("user_id", "org_id"):
        raise ValueError(f"column must be user_id or org_id, got {column!r}")
    col = source_tables().users.c[column]
    found = select(read_column(col)).where(col.in_([str(i) for i in ids])).distinct()
    return set(conn.execute(found).scalars())


def read_registered(conn: Connection, before: datetime) -> pl.DataFrame:
    """``user_id, created_at`` of the students registered before ``before`` (naive UTC)."""
    u = source_tables().users
    cols = (read_column(u.c.user_id), read_column(u.c.created_at))
    return read_frame(conn, select(*cols).where(u.c.created_at < before))


def read_organisations(conn: Connection) -> pl.DataFrame:
    """``user_id, org_id`` of every student (the groups of the weekly DIF test)."""
    u = source_tables().users
    return read_frame(conn, select(read_column(u.c.user_id), read_column(u.c.org_id)))


def read_created_at(conn: Connection, before: datetime) -> pl.DataFrame:
    """``created_at`` (naive UTC) of each student registered before ``before``."""
    u = source_tables().users
    return read_frame(conn, select(read_column(u.c.created_at)).where(u.c.created_at < before))


def read_goals(conn: Connection, user_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """:data:`GOALS_SCHEMA` rows: of the students who have a goal (``user_ids`` None), or of
    ``user_ids`` (goal or not: null ``goal_theta``/``goal_date`` when none)."""
    u = source_tables().users
    stmt = select(*(read_column(u.c[c]) for c in ("user_id", "goal_theta", "goal_date")))
    if user_ids is None:
        stmt = stmt.where(u.c.goal_theta.is_not(None))
    else:
        stmt = stmt.where(u.c.user_id.in_([str(x) for x in user_ids]))
    return read_frame(conn, stmt)


def select_students(
    conn: Connection,
    *,
    org_ids: Sequence[str] = (),
    user_ids: Sequence[str] = (),
    among: Select | None = None,
    limit: int,
) -> tuple[pl.DataFrame, int]:
    """Students by structured options, lowest ids first, at most ``limit``.

    Args:
        org_ids: only these organisations (empty = all).
        user_ids: only these students (empty = all).
        among: only the ids this ``select`` of user ids returns (an ``IN`` subquery, e.g.
            :func:`seedtest_assets.core.source.attempts.users_with_attempts`); None = all.
        limit: at most this many rows.

    Returns:
        (``user_id, display_name, org_name, goal_theta, goal_date`` frame, how many match
        without the limit). ``org_name`` is "" for a student of an unknown organisation.
    """
    src = source_tables()
    u, o = src.users, src.organizations
    conds = []
    if org_ids:
        conds.append(u.c.org_id.in_([str(x) for x in org_ids]))
    if user_ids:
        conds.append(u.c.user_id.in_([str(x) for x in user_ids]))
    if among is not None:
        conds.append(u.c.user_id.in_(among))
    where = and_(true(), *conds)
    stmt = (
        select(
            read_column(u.c.user_id),
            read_column(u.c.display_name),
            func.coalesce(o.c.name, "").label("org_name"),
            read_column(u.c.goal_theta),
            read_column(u.c.goal_date),
        )
        .select_from(u.outerjoin(o, o.c.org_id == u.c.org_id))
        .where(where)
        .order_by(u.c.user_id)
        .limit(limit)
    )
    frame = read_frame(conn, stmt)
    eligible = frame.height
    if frame.height == limit:  # maybe more: count them for the "truncated" metadata
        eligible = conn.execute(select(func.count()).select_from(u).where(where)).scalar_one()
    return frame, int(eligible)
