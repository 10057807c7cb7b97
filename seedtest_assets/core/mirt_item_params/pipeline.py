"""Weekly calibration: read a trailing window of valid attempts, calibrate, store (no Dagster).

Scale linking across weeks (``linking``):

- ``mean_sigma`` (default): every item is calibrated freely on the trailing window (so
  estimates keep improving as responses accumulate), then the new scale is mapped onto last
  week's by mean/sigma linking on the common unflagged items (:mod:`.linking`). Theta keeps
  the scale of the first calibration (N(0,1) in that population) and weeks stay comparable.
- ``fixed``: last week's unflagged items keep their parameters exactly (anchored) and only new
  or flagged items are estimated. Stable, but items stay at the estimate of the week they
  were first seen (measured on the demo: slope correlation with the truth 0.48 vs 0.92).
- ``none``: a fresh N(0,1) scale each week (a deliberate re-baselining).

Speed (issue 18): each week starts from last week's unflagged parameters (``warm_start``; the
engine first moves them onto this population's N(0,1) scale) and runs SQUAREM-accelerated EM
(``accelerate``). Both only change how fast EM gets there: on the 100k-student window plain
EM from scratch took 103 E-steps, SQUAREM 30, SQUAREM warm 10, all within 1e-3 of a tightly
converged solution (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.attempts import ValidationLimits, ValidationResult
from seedtest_assets.core.attempts.read import read_checked_attempts
from seedtest_assets.core.irt import Calibration, calibrate
from seedtest_assets.core.mirt_item_params import table
from seedtest_assets.core.mirt_item_params.linking import (
    DRIFT_SCHEMA,
    IDENTITY,
    Link,
    apply_link,
    robust_link,
)
from seedtest_assets.core.mirt_item_params.share import (
    DEFAULT_FLOOR,
    DEFAULT_MAX_SHARE,
    StudentCap,
    cap_student_responses,
)
from seedtest_assets.core.options import Acceleration, IrtModel
from seedtest_assets.core.warehouse import transaction

DEFAULT_WINDOW_WEEKS = 12
#: Slopes below this carry no information (b = -d/a explodes): flagged, not used.
MIN_SLOPE = 0.05
LINKINGS = ("mean_sigma", "fixed", "none")
#: EM stops when no parameter moves more than this. Below the engine's 1e-4: on the 100k
#: window warm SQUAREM then takes 16 E-steps instead of 11 and lands within 3.2e-4 of a tight
#: fit with the log-likelihood within 0.008 (at 1e-4: 8.2e-4 and 0.039; docs/benchmarks.md).
DEFAULT_TOL = 3e-5
#: The standard errors each stored row carries in ``params`` (on the stored scale; null where
#: not estimated): ``params->>'b_se'``.
SE_KEYS = ("a_se", "b_se", "c_se", "d_se")


@dataclass
class CalibrationRun:
    """What one weekly calibration read, estimated and stored."""

    week_start: date
    model: str
    version: str
    responses: int
    users: int
    items: int
    anchored: int
    flagged: int
    calibration: Calibration  # the raw fit (its own scale), for fit statistics
    link: Link
    params: pl.DataFrame  # what was stored: flagged and linked parameters
    #: the per-student cap of the window (share.py)
    student_cap: StudentCap | None = None
    #: student-days of the window quarantined by the plausibility limits (``user_id``,
    #: ``day``, ``attempts``, ``study_ms``): their attempts are not in the calibration
    student_days: pl.DataFrame | None = None
    #: items that started from last week's parameters (0: a cold start)
    warm_items: int = 0
    accelerate: str = "none"
    #: seconds reading + validating the window, and fitting (standard errors included)
    read_seconds: float = 0.0
    fit_seconds: float = 0.0
    #: the common items' drift test of the final link (:func:`.linking.anchor_drift`)
    drift: pl.DataFrame | None = None


@dataclass
class Window:
    """One week's calibration window as the calibration reads it (:func:`read_window`)."""

    #: the validation of the window's attempts (valid rows, rejects, flooded student-days)
    checked: ValidationResult
    #: the valid rows after the per-student cap: what is calibrated (all attempt columns)
    capped: pl.DataFrame
    student_cap: StudentCap

    @property
    def responses(self) -> pl.DataFrame:
        """``user_id, item_id, is_correct`` of the calibrated rows."""
        return self.capped.select("user_id", "item_id", "is_correct")


def read_window(
    engine: Engine,
    week_start: date,
    *,
    now: datetime,
    window_weeks: int = DEFAULT_WINDOW_WEEKS,
    max_student_share: float = DEFAULT_MAX_SHARE,
    min_student_responses: int = DEFAULT_FLOOR,
    limits: ValidationLimits | None = None,
) -> Window:
    """The valid, capped attempts of the ``window_weeks`` weeks ending with ``week_start``'s
    week: what :func:`calibrate_week` calibrates on (and ``item_quality`` re-reads)."""
    end = week_start + timedelta(days=7)
    checked = read_checked_attempts(
        engine, end - timedelta(weeks=window_weeks), end, now=now, limits=limits
    )
    capped, student_cap = cap_student_responses(
        checked.valid, max_share=max_student_share, floor=min_student_responses
    )
    return Window(checked, capped, student_cap)


def common_responses(capped: pl.DataFrame, week_start: date) -> pl.DataFrame:
    """``item_id`` (String), ``n_common``: each item's window responses before
    ``week_start`` (those last week's window held too, up to its cap), for the overlap
    correction of the drift test (:func:`.linking.anchor_drift`)."""
    start = datetime.combine(week_start, datetime.min.time())
    return (
        capped.filter(pl.col("attempted_at") < start)
        .group_by("item_id")
        .agg(n_common=pl.len().cast(pl.Int64))
        .with_columns(pl.col("item_id").cast(pl.String))
    )


def _finite(value: float | None) -> float | None:
    """JSON has no NaN (PostgreSQL's json type refuses it): not estimated is null."""
    return None if value is None or value != value else float(value)


class EmptyWindowError(ValueError):
    """A re-run found no input although the partition has stored rows."""


def empty_window_note(week_start: date, window_weeks: int) -> str:
    """The metadata note of a week with nothing to calibrate or score."""
    end = week_start + timedelta(days=7)
    return (
        f"no valid attempts in {end - timedelta(weeks=window_weeks)} .. "
        f"{end - timedelta(days=1)}: nothing to calibrate or score (a week before the data, "
        "or with none); empty partition, nothing stored"
    )


def version_for(model: str, week_start: date) -> str:
    """The version label stored with item parameters and the abilities scored with them."""
    return f"{model}@{week_start.isoformat()}"


def stored_item_params(engine: Engine, week_start: date, model: str) -> pl.DataFrame:
    """Stored parameters of one week: item_id, a, b, c, d, flagged, n_responses, version
    (empty if none; :func:`.table.read_week`)."""
    with engine.connect() as conn:
        return table.read_week(conn, week_start, model)


def flag_flat_items(items: pl.DataFrame) -> pl.DataFrame:
    """Flag unfixed items whose slope is below ``MIN_SLOPE`` (reason ``near_zero_slope``)."""
    flat = (pl.col("a") < MIN_SLOPE) & ~pl.col("fixed").fill_null(False)
    return items.with_columns(
        flagged=pl.col("flagged") | flat,
        flag_reason=pl.when(flat)
        .then(
            pl.concat_str(
                [pl.col("flag_reason"), pl.lit("near_zero_slope")], separator=";", ignore_nulls=True
            )
        )
        .otherwise(pl.col("flag_reason")),
    )


def calibrate_week(
    engine: Engine,
    week_start: date,
    *,
    now: datetime,
    model: IrtModel = "2PL",
    window_weeks: int = DEFAULT_WINDOW_WEEKS,
    linking: str = "mean_sigma",
    max_student_share: float = DEFAULT_MAX_SHARE,
    min_student_responses: int = DEFAULT_FLOOR,
    limits: ValidationLimits | None = None,
    accelerate: Acceleration = "squarem",
    warm_start: bool = True,
    tol: float = DEFAULT_TOL,
) -> CalibrationRun | None:
    """Calibrate on the ``window_weeks`` weeks ending with ``week_start``'s week; store the rows.

    Replaces the week's rows for ``model`` in one transaction (a re-run replaces). Item rows
    carry ``params`` = {a, b, c, d, n_responses, flagged, flag_reason, fixed}. Each student's
    valid responses are capped first (:mod:`.share`: at most ``max_student_share`` of the
    other students' responses, at least ``min_student_responses``); ``limits`` are the
    validation thresholds (default: the features' defaults, per-student-day limits included).
    ``warm_start``: start from last week's unflagged parameters (a cold start without them);
    ``accelerate``: the EM acceleration (:func:`seedtest_assets.core.irt.calibrate`); ``tol``:
    its stopping rule.

    Returns:
        The run, or None when the window holds no valid attempt (a week before the data:
        nothing is calibrated and nothing is stored, an empty partition).

    Raises:
        EmptyWindowError: no valid attempts in the window although the week has stored
            parameters (a re-run would delete them with nothing to replace them).
    """
    end = week_start + timedelta(days=7)
    t0 = time.perf_counter()
    window = read_window(
        engine,
        week_start,
        now=now,
        window_weeks=window_weeks,
        max_student_share=max_student_share,
        min_student_responses=min_student_responses,
        limits=limits,
    )
    checked, capped, student_cap = window.checked, window.capped, window.student_cap
    responses = window.responses
    if responses.height == 0:
        stored = stored_item_params(engine, week_start, model).height
        if stored:
            raise EmptyWindowError(
                f"no valid attempts between {end - timedelta(weeks=window_weeks)} and {end}, "
                f"but week {week_start} has {stored} stored {model} item parameters: refusing "
                "to replace them with nothing (were the attempts deleted?)"
            )
        return None
    if linking not in LINKINGS:
        raise ValueError(f"linking must be one of {LINKINGS}, got {linking!r}")
    previous = stored_item_params(engine, week_start - timedelta(days=7), model)
    anchors = None
    if linking == "fixed":
        anchors = previous.filter(~pl.col("flagged")).select("item_id", "a", "d", "c")
    start = None
    if warm_start and previous.height:
        start = previous.filter(~pl.col("flagged")).select("item_id", "a", "d", "c")
    t1 = time.perf_counter()
    cal = calibrate(
        responses,
        model=model,
        fixed_items=anchors,
        start_items=start,
        accelerate=accelerate,
        tol=tol,
        standard_errors=True,
    )
    t2 = time.perf_counter()
    version = version_for(cal.model, week_start)
    # The link ignores flat items itself and leaves drifted anchors out; flag flat items on
    # the final (linked) scale.
    link, drift = IDENTITY, pl.DataFrame(schema=DRIFT_SCHEMA)
    if linking == "mean_sigma":
        link, drift = robust_link(cal.items, previous, overlap=common_responses(capped, week_start))
    items = flag_flat_items(apply_link(cal.items, link))
    # The calibration population on the stored scale (theta' = A theta + B).
    scale_mean = link.A * cal.population_mean + link.B
    scale_sd = link.A * cal.population_sd
    params = [
        json.dumps(
            {
                "a": r["a"],
                "b": r["b"],
                "c": r["c"],
                "d": r["d"],
                "n_responses": r["n_responses"],
                "flagged": r["flagged"],
                "flag_reason": r["flag_reason"],
                "fixed": r.get("fixed", False),
                **{k: _finite(r[k]) for k in SE_KEYS},
                "scale_mean": scale_mean,
                "scale_sd": scale_sd,
            }
        )
        for r in items.iter_rows(named=True)
    ]
    rows = pl.DataFrame(
        {
            "week_start": [week_start] * items.height,
            "model": [cal.model] * items.height,
            "item_id": items["item_id"].cast(pl.String),
            "params": params,
            "version": [version] * items.height,
            "fitted_at": [now] * items.height,
        },
        schema=table.ROWS_SCHEMA,
    )
    with transaction(engine) as conn:
        table.replace_week(conn, week_start, cal.model, rows)
    return CalibrationRun(
        week_start=week_start,
        model=cal.model,
        version=version,
        responses=responses.height,
        users=responses["user_id"].n_unique(),
        items=items.height,
        anchored=int(items["fixed"].sum()) if "fixed" in items.columns else 0,
        flagged=int(items["flagged"].sum()),
        calibration=cal,
        link=link,
        params=items,
        student_cap=student_cap,
        student_days=checked.student_days,
        warm_items=0 if start is None else start.height,
        accelerate=accelerate,
        read_seconds=t1 - t0,
        fit_seconds=t2 - t1,
        drift=drift,
    )
