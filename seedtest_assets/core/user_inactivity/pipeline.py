"""Read -> classify -> write ``user_inactivity`` for a range of days (plain Python, no Dagster)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.features_topic_daily import table as features
from seedtest_assets.core.source import users as source_users
from seedtest_assets.core.user_inactivity import table
from seedtest_assets.core.user_inactivity.compute import InactivityThresholds, classify_inactivity
from seedtest_assets.core.warehouse import transaction


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
    end_ts = datetime.combine(end, time())
    with engine.connect() as conn:
        users = source_users.read_registered(conn, end_ts)
        before = features.read_last_attempt_before(conn, start)
        activity = features.read_daily_last_attempt(conn, start, end)
    rows = classify_inactivity(
        users, before, activity, start=start, end=end, computed_at=now, thresholds=thresholds
    )
    with transaction(engine) as conn:
        table.replace_days(conn, start, end, rows)
    last = rows.filter(pl.col("as_of_date") == rows["as_of_date"].max()) if rows.height else rows
    counts = dict(last.group_by("status").len().iter_rows()) if rows.height else {}
    return InactivityRun(start=start, end=end, rows=rows.height, status_counts=counts)


def stored_inactivity_stats(engine: Engine, start: date, end: date) -> dict[str, int]:
    """Per-range consistency figures for asset checks.

    ``rows`` stored vs ``expected`` (registered students x days); ``bad_status`` = rows whose
    status contradicts ``days_inactive`` being null.
    """
    end_ts = datetime.combine(end, time())
    with engine.connect() as conn:
        stored, bad = table.row_counts(conn, start, end)
        created = source_users.read_created_at(conn, end_ts)
    # A student is expected on every day from the day they registered.
    first_day = pl.max_horizontal(pl.col("created_at").dt.date(), pl.lit(start))
    expected = created.select((pl.lit(end) - first_day).dt.total_days().sum()).item() or 0
    return {"rows": int(stored), "expected": int(expected), "bad_status": int(bad)}
