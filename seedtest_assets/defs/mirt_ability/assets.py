"""``mirt_ability`` (weekly batch) and ``student/mirt_ability`` (one student), Dagster shell."""

from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from seedtest_assets.core.mirt_ability.pipeline import (
    DEFAULT_LOOKBACK_WEEKS,
    score_students,
    score_week,
)
from seedtest_assets.core.options import IrtModel
from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.workloads import IRT_POD, ONLINE_POD, op_tags
from seedtest_assets.defs.attempts.assets import attempts
from seedtest_assets.defs.mirt_ability.checks import unique_check
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.partitions import (
    USERS_BACKFILL,
    WEEKLY_BACKFILL,
    asset_with_backfill_policy,
    last_complete_week,
    users,
    weekly,
)
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.student_events import record_student_materializations, student_metadata

STUDENT_ABILITY = dg.AssetKey(["student", "mirt_ability"])


class AbilityConfig(dg.Config):
    """Scoring settings (launchpad-editable; out-of-range values are refused)."""

    model: IrtModel = Field(default="2PL", description="IRT model of the item parameters.")
    lookback_weeks: int = Field(
        default=DEFAULT_LOOKBACK_WEEKS,
        ge=1,
        le=52,
        description="Weeks of attempts scored, ending with the week (1-52).",
    )


@asset_with_backfill_policy(
    op_tags=op_tags(IRT_POD),
    partitions_def=weekly,
    backfill_policy=WEEKLY_BACKFILL,
    deps=[attempts, mirt_item_params],
    group_name="irt",
    kinds={"numpy", "sql"},
    check_specs=[
        dg.AssetCheckSpec(
            "finite_estimates",
            asset="mirt_ability",
            description="Every theta finite, every SE finite and > 0.",
        ),
        dg.AssetCheckSpec(
            "one_row_per_student",
            asset="mirt_ability",
            description="The week has one weekly row per student, counted in the warehouse "
            "(the unique index uq_mirt_ability_weekly makes a second one impossible).",
        ),
    ],
    description="EAP ability (theta) and SE of every student active in the trailing window, "
    "with the week's item parameters. Rows are versioned history (source = weekly).",
    metadata={"table": "mirt_ability"},
)
def mirt_ability(
    context: dg.AssetExecutionContext, config: AbilityConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    week_start = date.fromisoformat(context.partition_key)
    now = utc_now()
    run = score_week(
        warehouse.engine,
        week_start,
        now=now,
        model=config.model,
        lookback_weeks=config.lookback_weeks,
    )
    if run is None:  # no item parameters for a week before the data: an empty partition
        note = f"no item parameters for week {week_start} (nothing calibrated): nothing scored"
        context.log.info(note)
        return dg.MaterializeResult(
            metadata={"note": note, "students": 0},
            check_results=[
                dg.AssetCheckResult(
                    check_name="finite_estimates", passed=True, metadata={"note": note}
                ),
                unique_check(warehouse, week_start),
            ],
        )
    rows = run.rows
    # Per-student state in the UI, recorded in bulk. Only for the newest complete week (or the
    # week in progress): a backfill of an older week must not roll a student's "current" week
    # back (ADR 0001).
    recorded = "skipped (not the latest week)"
    if context.partition_key >= last_complete_week(now):
        recorded = record_student_materializations(
            context, STUDENT_ABILITY, student_metadata(rows.iter_rows(named=True))
        )
    finite = rows.filter(
        pl.col("theta").is_finite() & pl.col("se").is_finite() & (pl.col("se") > 0)
    ).height
    return dg.MaterializeResult(
        metadata={
            "version": run.version,
            "students": rows.height,
            "theta_mean": float(rows["theta"].mean()) if rows.height else 0.0,
            "se_median": float(rows["se"].median()) if rows.height else 0.0,
            "per_student_events": recorded,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="finite_estimates",
                passed=finite == rows.height,
                metadata={"students": rows.height, "not_finite": rows.height - finite},
            ),
            unique_check(warehouse, week_start),
        ],
    )


@asset_with_backfill_policy(
    op_tags=op_tags(ONLINE_POD),
    key=STUDENT_ABILITY,
    partitions_def=users,
    backfill_policy=USERS_BACKFILL,
    deps=[
        attempts,
        # A student's partition reads the latest calibrated week, whichever that is: it depends
        # on the weekly calibration as a whole (there is no week-to-student identity mapping).
        dg.AssetDep(mirt_item_params, partition_mapping=dg.AllPartitionMapping()),
    ],
    group_name="irt",
    kinds={"numpy", "sql"},
    description="One student's current ability. Materialize a student (partition = user id) "
    "to re-score them now with the latest item parameters; the weekly batch and the attempts "
    "sensor record this asset per student in bulk.",
)
def student_mirt_ability(
    context: dg.AssetExecutionContext, config: AbilityConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    user_ids = list(context.partition_keys)
    run = score_students(
        warehouse.engine,
        user_ids,
        now=utc_now(),
        model=config.model,
        lookback_days=7 * config.lookback_weeks,
    )
    scored = set(run.rows["user_id"].to_list())
    noop = [u for u in user_ids if u not in scored]
    if noop:
        context.log.info("no scorable attempts for %s: nothing to update", noop)
    meta = student_metadata(run.rows.iter_rows(named=True))
    # A single student's materialization carries their numbers; a handful carry a summary.
    one = meta.get(user_ids[0], {}) if len(user_ids) == 1 else {}
    return dg.MaterializeResult(
        metadata={
            **one,
            "scored": len(scored),
            "noop": [str(u) for u in noop],
            "version": run.version,
        }
    )
