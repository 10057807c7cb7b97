"""Scoring students with stored item parameters, and the versioned ``mirt_ability`` rows.

``mirt_ability`` is append-only history: each scoring adds rows with ``source`` ``weekly``
(the batch for a week), ``on_demand`` (one student re-scored by a person) or ``online``
(after a session, issue 5). Re-running a week's batch replaces that week's ``weekly`` rows.
The current ability of a student is their row with the latest ``fitted_at``: the view
``mirt_ability_latest`` (migration 0002) holds exactly those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine, and_, func, select

from seedtest_assets.attempts.read import read_valid_attempts
from seedtest_assets.irt import ItemBank, score
from seedtest_assets.irt.growth import score_growth
from seedtest_assets.mirt_item_params.pipeline import stored_item_params
from seedtest_assets.warehouse import insert_frame, replace_rows, transaction
from seedtest_assets.warehouse import schema as s

DEFAULT_LOOKBACK_WEEKS = 12


@dataclass
class ScoringRun:
    """Rows written by one scoring (``rows`` has the ``mirt_ability`` columns)."""

    week_start: date
    version: str
    rows: pl.DataFrame


def latest_calibrated_week(engine: Engine, model: str, on_or_before: date) -> date | None:
    """The most recent week with stored item parameters for ``model``."""
    t = s.mirt_item_params
    with engine.connect() as conn:
        return conn.execute(
            select(func.max(t.c.week_start)).where(
                t.c.model == model, t.c.week_start <= on_or_before
            )
        ).scalar_one()


def _score(
    engine: Engine,
    week_start: date,
    model: str,
    start: date,
    end: date,
    now: datetime,
    source: str,
    user_ids: Sequence[int] | None = None,
    growth: bool = False,
) -> ScoringRun:
    items = stored_item_params(engine, week_start, model)
    if items.height == 0:
        raise ValueError(f"no {model} item parameters stored for week {week_start}")
    responses = read_valid_attempts(engine, start, end, now=now, user_ids=user_ids)
    version = items["version"][0]
    if responses.height == 0:
        return ScoringRun(week_start, version, pl.DataFrame(schema=ROWS_SCHEMA))
    bank = ItemBank(items)
    abilities = score(responses.select("user_id", "item_id", "is_correct"), bank, method="EAP")
    if growth:
        abilities = abilities.join(_growth(responses, bank, end), on="user_id", how="left")
    else:
        abilities = abilities.with_columns(
            pl.lit(None, pl.Float64).alias(c) for c in GROWTH_COLUMNS
        )
    rows = abilities.filter(pl.col("n_responses") > 0).select(
        pl.col("user_id").cast(pl.Int64),
        pl.lit(week_start).alias("week_start"),
        "theta",
        "se",
        pl.lit(model).alias("model"),
        pl.lit(version).alias("version"),
        pl.lit(source).alias("source"),
        pl.col("n_responses").cast(pl.Int64),
        pl.lit(now, dtype=pl.Datetime("us")).alias("fitted_at"),
        *GROWTH_COLUMNS,
    )
    return ScoringRun(week_start, version, rows.cast(ROWS_SCHEMA))


#: The growth model's columns (weekly rows only; NULL on online / on-demand rows).
GROWTH_COLUMNS = ("theta_end", "theta_end_se", "growth", "growth_se", "growth_cov")


def _growth(responses: pl.DataFrame, bank: ItemBank, end: date) -> pl.DataFrame:
    """Linear growth through each student's responses, referenced to ``end`` (the end of the
    scored week): theta_end (logits), growth (logits/week), SEs and covariance."""
    ref = datetime.combine(end, datetime.min.time())
    timed = responses.select(
        "user_id",
        "item_id",
        "is_correct",
        t=(pl.col("attempted_at") - ref).dt.total_microseconds() / (7 * 86_400 * 1e6),
    )
    est = score_growth(timed, bank).estimates
    return est.select(
        "user_id",
        theta_end="theta",
        theta_end_se="theta_se",
        growth="growth",
        growth_se="growth_se",
        growth_cov="cov",
    )


ROWS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "week_start": pl.Date(),
    "theta": pl.Float64(),
    "se": pl.Float64(),
    "model": pl.String(),
    "version": pl.String(),
    "source": pl.String(),
    "n_responses": pl.Int64(),
    "fitted_at": pl.Datetime("us"),
    **dict.fromkeys(GROWTH_COLUMNS, pl.Float64()),
}


def score_week(
    engine: Engine,
    week_start: date,
    *,
    now: datetime,
    model: str = "2PL",
    lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS,
) -> ScoringRun:
    """EAP theta and SE of every student with valid attempts in the ``lookback_weeks`` weeks
    ending with ``week_start``'s week, using that week's stored item parameters, and the
    linear-growth estimates (``theta_end``, ``growth``, ...; :mod:`seedtest_assets.irt.growth`)
    through the same responses, referenced to the end of the week.

    Replaces the week's ``weekly`` rows in one transaction.
    """
    end = week_start + timedelta(days=7)
    run = _score(
        engine,
        week_start,
        model,
        end - timedelta(weeks=lookback_weeks),
        end,
        now,
        "weekly",
        growth=True,
    )
    t = s.mirt_ability
    with transaction(engine) as conn:
        replace_rows(conn, t, and_(t.c.week_start == week_start, t.c.source == "weekly"), run.rows)
    return run


def score_students(
    engine: Engine,
    user_ids: Sequence[int],
    *,
    now: datetime,
    model: str = "2PL",
    lookback_days: int = 7 * DEFAULT_LOOKBACK_WEEKS,
    source: str = "on_demand",
) -> ScoringRun:
    """Re-score a few students now with the latest stored item parameters; append rows.

    Students without valid attempts in the look-back get no row (the caller reports a no-op).

    Raises:
        ValueError: no item parameters stored yet for ``model``.
    """
    week = latest_calibrated_week(engine, model, now.date())
    if week is None:
        raise ValueError(f"no {model} item parameters stored yet: calibrate a week first")
    end = now.date() + timedelta(days=1)
    run = _score(
        engine,
        week,
        model,
        end - timedelta(days=lookback_days),
        end,
        now,
        source,
        user_ids=user_ids,
    )
    with transaction(engine) as conn:
        insert_frame(conn, s.mirt_ability, run.rows)
    return run
