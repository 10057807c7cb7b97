"""Weekly item quality: read the week's calibration and its window, assess, store (no
Dagster). The window is read exactly as the calibration read it
(:func:`seedtest_assets.core.mirt_item_params.pipeline.read_window`), so fit and DIF judge
the parameters on the responses they were estimated from."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.item_quality import table
from seedtest_assets.core.item_quality.assess import Assessment, QualitySettings, assess_items
from seedtest_assets.core.item_quality.page import page_data, render_page
from seedtest_assets.core.mirt_item_params.pipeline import (
    DEFAULT_WINDOW_WEEKS,
    common_responses,
    read_window,
    stored_item_params,
)
from seedtest_assets.core.mirt_item_params.share import DEFAULT_FLOOR, DEFAULT_MAX_SHARE
from seedtest_assets.core.source import users
from seedtest_assets.core.warehouse import transaction


@dataclass
class QualityRun:
    """What one week's assessment read, found and stored."""

    week_start: date
    model: str
    version: str
    assessment: Assessment
    rows: int
    read_seconds: float
    assess_seconds: float
    #: last week's stored parameters (the drift curves of the item-bank page)
    previous: pl.DataFrame

    def page(self) -> bytes:
        """The week's item-bank page (HTML, :mod:`.page`)."""
        data = page_data(
            self.assessment, self.previous, week_start=self.week_start, version=self.version
        )
        return render_page(data)


def assess_week(
    engine: Engine,
    week_start: date,
    *,
    now: datetime,
    model: str = "2PL",
    window_weeks: int = DEFAULT_WINDOW_WEEKS,
    max_student_share: float = DEFAULT_MAX_SHARE,
    min_student_responses: int = DEFAULT_FLOOR,
    settings: QualitySettings | None = None,
) -> QualityRun | None:
    """Assess the week's stored ``model`` calibration and replace the week's
    ``item_quality`` rows in one transaction (a re-run replaces).

    ``window_weeks``, ``max_student_share``, ``min_student_responses``: the calibration's
    settings (the window it was fitted on); ``settings``: the thresholds.

    Returns:
        The run, or None when the week has no stored calibration (nothing to judge, nothing
        written: a week before the data).
    """
    t0 = time.perf_counter()
    items = stored_item_params(engine, week_start, model)
    if items.height == 0:
        return None
    previous = stored_item_params(engine, week_start - timedelta(days=7), model)
    window = read_window(
        engine,
        week_start,
        now=now,
        window_weeks=window_weeks,
        max_student_share=max_student_share,
        min_student_responses=min_student_responses,
    )
    with engine.connect() as conn:
        orgs = users.read_organisations(conn).select("user_id", group="org_id")
    t1 = time.perf_counter()
    assessment = assess_items(
        window.responses,
        items,
        previous,
        model=model,
        overlap=common_responses(window.capped, week_start),
        groups=orgs,
        settings=settings,
    )
    t2 = time.perf_counter()
    version = str(items["version"][0])
    frame = assessment.items.with_columns(
        week_start=pl.lit(week_start, pl.Date),
        model=pl.lit(model),
        version=pl.lit(version),
        c=pl.col("c").fill_null(0.0),
        assessed_at=pl.lit(now, pl.Datetime("us")),
    ).select(list(table.ROWS_SCHEMA))
    # NaN (a statistic with no degrees of freedom, an untestable slope) is stored as null,
    # "not tested", as everywhere else: PostgreSQL would keep a NaN, SQLite a null.
    frame = frame.cast(table.ROWS_SCHEMA).with_columns(pl.col(pl.Float64).fill_nan(None))
    with transaction(engine) as conn:
        rows = table.replace_week(conn, week_start, model, frame)
    return QualityRun(week_start, model, version, assessment, rows, t1 - t0, t2 - t1, previous)
