"""Read -> classify -> write ``user_inactivity`` for a range of days (plain Python, no Dagster)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import polars as pl
from sqlalchemy import Engine, and_, func, select

from seedtest_assets.core.user_inactivity.compute import InactivityThresholds, classify_inactivity
from seedtest_assets.core.warehouse import read_frame, replace_rows, transaction
from seedtest_assets.core.warehouse import schema as s


@dataclass
class InactivityRun:
    """What one materialization of ``[start, end)`` wrote."""

    start: date
    end: date
    rows: int
    status_counts: dict[str, int]  # over the last day of the range


def materialize_inactivity(
    engine: Engine,
    start: date,
    end: date,
    *,
    now: datetime,
    thresholds: InactivityThresholds | None = None,
) -> InactivityRun:
    """Compute and store ``user_inactivity`` for days ``[start, end)`` (replacing them).

    Activity comes from ``features_topic_daily`` (valid attempts only), so quarantined rows
    never make a student look active.
    """
    f = s.features_topic_daily
    end_ts = datetime.combine(end, time())
    with engine.connect() as conn:
        users = read_frame(
            conn,
            select(s.users.c.user_id, s.users.c.created_at).where(s.users.c.created_at < end_ts),
        )
        before = read_frame(
            conn,
            select(f.c.user_id, func.max(f.c.last_attempt_at).label("last_attempt_at"))
            .where(f.c.date < start)
            .group_by(f.c.user_id),
        )
        activity = read_frame(
            conn,
            select(f.c.user_id, f.c.date, func.max(f.c.last_attempt_at).label("last_attempt_at"))
            .where(f.c.date >= start, f.c.date < end)
            .group_by(f.c.user_id, f.c.date),
        )
    rows = classify_inactivity(
        users, before, activity, start=start, end=end, computed_at=now, thresholds=thresholds
    )
    u = s.user_inactivity
    with transaction(engine) as conn:
        replace_rows(conn, u, and_(u.c.as_of_date >= start, u.c.as_of_date < end), rows)
    last = rows.filter(pl.col("as_of_date") == rows["as_of_date"].max()) if rows.height else rows
    counts = dict(last.group_by("status").len().iter_rows()) if rows.height else {}
    return InactivityRun(start=start, end=end, rows=rows.height, status_counts=counts)


def stored_inactivity_stats(engine: Engine, start: date, end: date) -> dict[str, int]:
    """Per-range consistency figures for asset checks.

    ``rows`` stored vs ``expected`` (registered students x days); ``bad_status`` = rows whose
    status contradicts ``days_inactive`` being null.
    """
    u = s.user_inactivity
    in_range = and_(u.c.as_of_date >= start, u.c.as_of_date < end)
    end_ts = datetime.combine(end, time())
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).where(in_range)).scalar_one()
        bad = conn.execute(
            select(func.count()).where(
                in_range,
                (u.c.days_inactive.is_(None)) != (u.c.status == "never_active"),
            )
        ).scalar_one()
        created = read_frame(
            conn, select(s.users.c.created_at).where(s.users.c.created_at < end_ts)
        )
    # A student is expected on every day from the day they registered.
    first_day = pl.max_horizontal(pl.col("created_at").dt.date(), pl.lit(start))
    expected = created.select((pl.lit(end) - first_day).dt.total_days().sum()).item() or 0
    return {"rows": int(stored), "expected": int(expected), "bad_status": int(bad)}
