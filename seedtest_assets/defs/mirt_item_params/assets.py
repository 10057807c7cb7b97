"""``mirt_item_params``: weekly IRT calibration (Dagster shell over the pipeline)."""

from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from seedtest_assets.core.mirt_item_params.pipeline import (
    DEFAULT_TOL,
    DEFAULT_WINDOW_WEEKS,
    calibrate_week,
    empty_window_note,
)
from seedtest_assets.core.mirt_item_params.share import DEFAULT_FLOOR, DEFAULT_MAX_SHARE
from seedtest_assets.core.options import Acceleration, IrtModel, Linking
from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.workloads import IRT_POD, op_tags
from seedtest_assets.defs.attempts.assets import attempts
from seedtest_assets.defs.mirt_item_params.checks import PLAUSIBLE, student_share_check
from seedtest_assets.defs.partitions import (
    WEEKLY_BACKFILL,
    asset_with_backfill_policy,
    weekly,
    window_back,
)
from seedtest_assets.defs.resources import WarehouseResource


class CalibrationConfig(dg.Config):
    """Calibration settings (launchpad-editable; out-of-range values are refused)."""

    model: IrtModel = Field(default="2PL", description="IRT model to calibrate.")
    window_weeks: int = Field(
        default=DEFAULT_WINDOW_WEEKS,
        ge=1,
        le=52,
        description="Weeks of attempts ending with the partition's week (1-52).",
    )
    linking: Linking = Field(
        default="mean_sigma",
        description="How the week is put on last week's scale (mirt_item_params/pipeline.py).",
    )
    max_student_share: float = Field(
        default=DEFAULT_MAX_SHARE,
        gt=0,
        le=1.0,
        description="No student keeps more than this share of the other students' responses "
        "in the window (mirt_item_params/share.py; default 0.03).",
    )
    min_student_responses: int = Field(
        default=DEFAULT_FLOOR,
        ge=1,
        description="Responses every student keeps whatever the share (default 100).",
    )
    accelerate: Acceleration = Field(
        default="squarem",
        description="EM acceleration: 'squarem' (default; the log-likelihood still never "
        "decreases) or 'none' (plain Bock-Aitkin cycles, about 3x as many).",
    )
    tol: float = Field(
        default=DEFAULT_TOL,
        gt=0,
        le=1e-2,
        description="EM stops when no parameter moves more than this (default 3e-5).",
    )
    warm_start: bool = Field(
        default=True,
        description="Start from last week's unflagged item parameters (moved onto this "
        "window's scale first); false: start from proportions correct.",
    )


@asset_with_backfill_policy(
    op_tags=op_tags(IRT_POD),
    partitions_def=weekly,
    backfill_policy=WEEKLY_BACKFILL,
    deps=[
        attempts,
        # Scale linking reads last week's parameters: weeks build on each other.
        dg.AssetDep(
            "mirt_item_params",
            partition_mapping=window_back(-1, -1),
        ),
    ],
    group_name="irt",
    kinds={"numpy", "scipy", "sql"},
    check_specs=[
        dg.AssetCheckSpec(
            "converged",
            asset="mirt_item_params",
            description="EM stopped because no parameter moved more than tol (default 3e-5), "
            "not at the cycle limit.",
        ),
        dg.AssetCheckSpec(
            "plausible_parameters",
            asset="mirt_item_params",
            description=f"Unflagged items within {PLAUSIBLE} (slope, intercept, guessing).",
        ),
        dg.AssetCheckSpec(
            "student_share",
            asset="mirt_item_params",
            description="Warns when one student was capped in the window (more than "
            "max_student_share of the others' responses) or student-days of the window were "
            "quarantined by the plausibility limits (a flood); metadata names them.",
        ),
    ],
    description="Item parameters (a, b, c; slope-intercept d) by marginal maximum likelihood "
    "(Bock-Aitkin EM) on a trailing window of valid attempts, linked to last week's scale.",
    metadata={"table": "mirt_item_params"},
)
def mirt_item_params(
    context: dg.AssetExecutionContext, config: CalibrationConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    week_start = date.fromisoformat(context.partition_key)
    run = calibrate_week(
        warehouse.engine,
        week_start,
        now=utc_now(),
        model=config.model,
        window_weeks=config.window_weeks,
        linking=config.linking,
        max_student_share=config.max_student_share,
        min_student_responses=config.min_student_responses,
        accelerate=config.accelerate,
        warm_start=config.warm_start,
        tol=config.tol,
    )
    if run is None:  # a week before the data: an empty partition, not a failure
        note = empty_window_note(week_start, config.window_weeks)
        context.log.info(note)
        return dg.MaterializeResult(
            metadata={"note": note, "items": 0, "responses": 0},
            check_results=[
                dg.AssetCheckResult(check_name=name, passed=True, metadata={"note": note})
                for name in ("converged", "plausible_parameters", "student_share")
            ],
        )
    cal, items = run.calibration, run.params
    free = items.filter(~pl.col("flagged"))
    bad = free.filter(
        ~pl.all_horizontal([pl.col(k).is_between(lo, hi) for k, (lo, hi) in PLAUSIBLE.items()])
    )
    context.log.info(
        "calibrated %s: %d items (%d anchored, %d flagged), LL %.1f, %d cycles (%s, %d items "
        "warm-started), converged=%s; read %.1f s, fit %.1f s",
        run.version,
        run.items,
        run.anchored,
        run.flagged,
        cal.log_likelihood,
        cal.iterations,
        run.accelerate,
        run.warm_items,
        cal.converged,
        run.read_seconds,
        run.fit_seconds,
    )
    return dg.MaterializeResult(
        metadata={
            "version": run.version,
            "log_likelihood": float(cal.log_likelihood),
            "iterations": int(cal.iterations),
            "converged": bool(cal.converged),
            "accelerate": run.accelerate,
            "warm_start_items": run.warm_items,
            "read_seconds": round(run.read_seconds, 2),
            "fit_seconds": round(run.fit_seconds, 2),
            "items": run.items,
            "anchored_items": run.anchored,
            "flagged_items": run.flagged,
            "responses": run.responses,
            "students": run.users,
            "linking": config.linking,
            "link_A": run.link.A,
            "link_B": run.link.B,
            "link_common_items": run.link.common,
            # Drifted anchors left out of the link (item_quality reports their tests).
            "link_dropped_anchors": len(run.link.dropped),
            "link_dropped_sample": list(run.link.dropped[:20]),
            # The window, which item_quality re-reads with the same settings.
            "window_weeks": config.window_weeks,
            "max_student_share": config.max_student_share,
            "min_student_responses": config.min_student_responses,
            "student_cap": run.student_cap.metadata(),
            "quarantined_student_days": run.student_days.height,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="converged",
                passed=bool(cal.converged),
                metadata={"iterations": int(cal.iterations)},
            ),
            dg.AssetCheckResult(
                check_name="plausible_parameters",
                passed=bad.height == 0,
                metadata={
                    "implausible_items": bad["item_id"].head(20).to_list(),
                    "count": bad.height,
                },
            ),
            student_share_check(run),
        ],
    )
