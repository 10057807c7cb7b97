"""Per-topic ability of a week, computed once and stored (no Dagster).

Each (student, topic) with valid attempts in the look-back window (the window of
``mirt_ability``: ``lookback_weeks`` weeks ending with the week) is scored as its own
pseudo-student, EAP with fixed item parameters: those the weekly reports have always used, the
latest calibration of ``model`` on or before the week, flagged items left out. This is the
computation the report batch used to run inside itself (``_topic_stats``); the reports now
read the stored rows (:func:`seedtest_assets.core.topic_ability.table.read_topic_ability`).

:func:`topic_abilities` is the pure part (frames in, frame out); :func:`materialize_week`
reads its inputs from the warehouse and replaces the week's rows in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.attempts.read import read_valid_attempts
from seedtest_assets.core.irt import score
from seedtest_assets.core.mirt_ability.pipeline import (
    DEFAULT_LOOKBACK_WEEKS,
    NoItemParamsError,
    latest_calibrated_week,
)
from seedtest_assets.core.mirt_item_params.pipeline import stored_item_params
from seedtest_assets.core.topic_ability import table
from seedtest_assets.core.topic_ability.table import ROWS_SCHEMA
from seedtest_assets.core.warehouse import transaction
from seedtest_assets.core.warehouse.schema import FrameSchema

#: What :func:`topic_abilities` returns (the table's columns without week and provenance).
ABILITY_SCHEMA: FrameSchema = {
    k: ROWS_SCHEMA[k] for k in ("user_id", "topic_id", "theta", "se", "n_responses")
}


def window(week_start: date, lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS) -> tuple[date, date]:
    """The look-back window ``[start, end)`` of a week: ``lookback_weeks`` weeks ending with it."""
    end = week_start + timedelta(days=7)
    return end - timedelta(weeks=lookback_weeks), end


def usable_items(items: pl.DataFrame) -> pl.DataFrame:
    """The item parameters topic θ is scored with: the unflagged ones."""
    if "flagged" not in items.columns:
        return items
    return items.filter(~pl.col("flagged").fill_null(False))


def topic_abilities(valid: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """θ per (user, topic): each pair's responses scored as one pseudo-student (EAP).

    Args:
        valid: valid attempts of the window (``user_id, topic_id, item_id, is_correct``).
        items: stored item parameters (``stored_item_params``); flagged ones are left out.

    Returns:
        ``user_id, topic_id, theta, se, n_responses`` (responses to scored items), one row per
        pair with at least one such response, ordered by user and topic. Pairs whose answers
        all went to unknown or flagged items have no θ and no row (the reports show none).
    """
    bank = usable_items(items)
    if bank.height == 0 or valid.height == 0:
        return pl.DataFrame(schema=ABILITY_SCHEMA)
    ids = (
        valid.select("user_id", "topic_id")
        .unique()
        .sort("user_id", "topic_id")
        .with_row_index("pseudo")
        .with_columns(pl.col("pseudo").cast(pl.Int64))
    )
    resp = valid.join(ids, on=["user_id", "topic_id"]).select(
        pl.col("pseudo").alias("user_id"), "item_id", "is_correct"
    )
    ab = score(resp, bank, method="EAP")
    return (
        ab.filter(pl.col("n_responses") > 0)
        .join(ids, left_on="user_id", right_on="pseudo", suffix="_real")
        .select(pl.col("user_id_real").alias("user_id"), "topic_id", "theta", "se", "n_responses")
        .cast(ABILITY_SCHEMA)
        .sort("user_id", "topic_id")
    )


@dataclass
class TopicAbilityRun:
    """What :func:`materialize_week` stored for a week (``rows`` in ``ROWS_SCHEMA``)."""

    week_start: date
    model: str
    #: The calibrated week whose item parameters were used (None: nothing calibrated yet).
    items_week: date | None
    version: str
    rows: pl.DataFrame
    #: Valid window attempts read.
    responses: int = 0
    #: Why the partition is empty ("" when it has rows).
    note: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def students(self) -> int:
        return self.rows["user_id"].n_unique() if self.rows.height else 0

    @property
    def topics(self) -> int:
        return self.rows["topic_id"].n_unique() if self.rows.height else 0


def materialize_week(
    engine: Engine,
    week_start: date,
    *,
    now: datetime,
    model: str = "2PL",
    lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS,
) -> TopicAbilityRun:
    """Compute the week's per-topic abilities and replace its stored rows (one transaction).

    ``now`` (naive UTC) validates the attempts (no "future" answers) and is stored as
    ``fitted_at``. A week with nothing to score (no item parameters yet, or no valid attempts
    in the window) and nothing stored is an empty partition: the run's ``note`` says why.

    Raises:
        ValueError: ``week_start`` is not a Monday.
        NoItemParamsError: no item parameters, but the week has stored rows.
        EmptyReplaceError: nothing to score, but the week has stored rows (nothing changed).
    """
    if week_start.weekday() != 0:
        raise ValueError(f"week_start must be a Monday, got {week_start}")
    t0 = time.perf_counter()
    start, end = window(week_start, lookback_weeks)
    calibrated = latest_calibrated_week(engine, model, week_start)
    if calibrated is None:
        with engine.connect() as conn:
            stored = table.week_rows(conn, week_start)
        if stored:
            raise NoItemParamsError(
                f"no {model} item parameters stored on or before week {week_start}, but "
                f"topic_ability has {stored} rows for it: refusing to replace them with nothing"
            )
        return TopicAbilityRun(
            week_start,
            model,
            None,
            "",
            pl.DataFrame(schema=ROWS_SCHEMA),
            note=f"no {model} item parameters on or before week {week_start} (nothing "
            "calibrated yet): nothing scored; empty partition, nothing stored",
            seconds={"total": time.perf_counter() - t0},
        )
    items = stored_item_params(engine, calibrated, model)
    version = str(items["version"][0])
    valid = read_valid_attempts(engine, start, end, now=now)
    t1 = time.perf_counter()
    scored = topic_abilities(valid, items)
    t2 = time.perf_counter()
    rows = scored.with_columns(
        pl.lit(week_start).alias("week_start"),
        pl.lit(model).alias("model"),
        pl.lit(version).alias("version"),
        pl.lit(now, dtype=pl.Datetime("us")).alias("fitted_at"),
    ).select(list(ROWS_SCHEMA))
    rows = rows.cast(ROWS_SCHEMA)
    with transaction(engine) as conn:
        table.replace_week(conn, week_start, rows)
    t3 = time.perf_counter()
    note = ""
    if rows.height == 0:
        note = (
            f"no valid attempts to scored items in {start} .. {end - timedelta(days=1)}: "
            "nothing scored (a week before the data, or with none); empty partition, "
            "nothing stored"
        )
    return TopicAbilityRun(
        week_start,
        model,
        calibrated,
        version,
        rows,
        responses=valid.height,
        note=note,
        seconds={"read": t1 - t0, "score": t2 - t1, "write": t3 - t2, "total": t3 - t0},
    )
