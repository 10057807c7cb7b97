"""``weekly_kpi`` against the warehouse: read the inputs, compute, replace the week's rows.

Reads only aggregated tables (never raw attempts): ``features_topic_daily`` summed per student
and day in SQL, the weekly ``mirt_ability`` rows of the latest calibrated week, and the
students' goals. The week's rows are replaced in one transaction (DELETE + INSERT).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.features_topic_daily import table as features
from seedtest_assets.core.mirt_ability import table as abilities_table
from seedtest_assets.core.mirt_ability.pipeline import latest_ability_week
from seedtest_assets.core.source import users
from seedtest_assets.core.warehouse import transaction
from seedtest_assets.core.weekly_kpi import table
from seedtest_assets.core.weekly_kpi.compute import (
    ABILITY_SCHEMA,
    KPI_SCHEMA,
    ChurnModel,
    KpiSettings,
    compute_weekly_kpi,
    kpi_rows,
)


@dataclass
class KpiRun:
    """What one materialization computed and wrote."""

    week_start: date
    as_of: date
    ability_week: date | None
    kpis: pl.DataFrame  # the wide frame (compute.KPI_SCHEMA)
    churn_model: ChurnModel
    seconds: dict[str, float] = field(default_factory=dict)


def as_of_for(week_start: date, now: datetime) -> date:
    """The exclusive end of the data a week's KPIs use: the Monday after a finished week,
    today (00:00 UTC, the last complete day being yesterday) for the week in progress."""
    return min(week_start + timedelta(days=7), max(week_start, now.date()))


def read_activity(engine: Engine, start: date, end: date) -> pl.DataFrame:
    """Daily activity per student over ``[start, end)``: user_id, date, attempts, correct,
    study_ms (summed over topics in SQL, so only one row per active student-day travels)."""
    with engine.connect() as conn:
        return features.read_daily_activity(conn, start, end)


def read_abilities(
    engine: Engine, week: date | None, columns: tuple[str, ...] = tuple(ABILITY_SCHEMA)
) -> pl.DataFrame:
    """Weekly ``mirt_ability`` rows of ``week``: ``columns`` of compute.ABILITY_SCHEMA
    (all by default); empty when ``week`` is None."""
    if week is None:
        return pl.DataFrame(schema={c: ABILITY_SCHEMA[c] for c in columns})
    with engine.connect() as conn:
        return abilities_table.read_weekly(conn, week, columns)


def read_goals(engine: Engine) -> pl.DataFrame:
    """user_id, goal_theta, goal_date of the students who have a goal."""
    with engine.connect() as conn:
        return users.read_goals(conn)


def materialize_weekly_kpi(
    engine: Engine,
    week_start: date,
    *,
    now: datetime,
    settings: KpiSettings | None = None,
) -> KpiRun:
    """Compute the week's KPIs and replace its ``weekly_kpi`` rows (one transaction)."""
    settings = settings or KpiSettings()
    as_of = as_of_for(week_start, now)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    activity = read_activity(engine, as_of - timedelta(days=settings.history_days()), as_of)
    week = latest_ability_week(engine, week_start)
    abilities = read_abilities(engine, week)
    goals = read_goals(engine)
    seconds["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = compute_weekly_kpi(
        activity,
        abilities,
        goals,
        week_start=week_start,
        as_of=as_of,
        settings=settings,
    )
    rows = kpi_rows(result.kpis, now)
    seconds["compute"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with transaction(engine) as conn:
        table.replace_week(conn, week_start, rows)
    seconds["write"] = time.perf_counter() - t0
    return KpiRun(week_start, as_of, week, result.kpis, result.churn_model, seconds)


def missing_active_students(engine: Engine, week_start: date, as_of: date) -> tuple[int, list]:
    """Students with features in ``[week_start, as_of)`` but no ``weekly_kpi`` row for the
    week, counted in the warehouse: (count, up to 10 sample ids)."""
    with engine.connect() as conn:
        return table.missing_users(conn, week_start, features.active_users(week_start, as_of))


def stored_kpis(engine: Engine, week_start: date) -> pl.DataFrame:
    """The stored rows of a week, JSON decoded into columns (for reports, demo and tests)."""
    with engine.connect() as conn:
        raw = table.read_kpis(conn, week_start)
    if raw.height == 0:
        return raw
    payload = {k: v for k, v in KPI_SCHEMA.items() if k not in ("week_start", "user_id")}
    decoded = raw["kpis"].str.json_decode(pl.Struct(payload)).struct.unnest()
    return pl.concat([raw.select("user_id"), decoded], how="horizontal").sort("user_id")
