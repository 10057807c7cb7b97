"""``features_topic_daily`` asset and its checks (Dagster shell over the pipeline)."""

import dagster as dg
from pydantic import Field

from seedtest_assets.core.attempts import ValidationLimits
from seedtest_assets.core.features_topic_daily.compute import IMPROVEMENT_LOOKBACK_DAYS
from seedtest_assets.core.features_topic_daily.pipeline import (
    materialize_features,
)
from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.workloads import BATCH_POD, op_tags
from seedtest_assets.defs.attempts.assets import attempts
from seedtest_assets.defs.features_topic_daily.checks import CHECKS, feature_check_results
from seedtest_assets.defs.partitions import (
    DAILY_BACKFILL,
    asset_with_backfill_policy,
    daily,
    partition_days,
    window_back,
)
from seedtest_assets.defs.resources import WarehouseResource


class FeaturesConfig(dg.Config):
    """Validation and feature settings (launchpad-editable)."""

    max_response_time_ms: int = Field(
        default=3_600_000,
        ge=1_000,
        le=24 * 3_600_000,
        description="Longer answers are quarantined (response_time_absurd); 1 s .. 24 h.",
    )
    max_attempts_per_student_day: int = Field(
        default=1_000,
        ge=1,
        le=1_000_000,
        description="More valid attempts of one student in one UTC day quarantine that "
        "student-day whole (student_day_attempts).",
    )
    max_study_hours_per_student_day: float = Field(
        default=16.0,
        gt=0,
        le=24.0,
        description="More summed response time of one student in one UTC day, hours, "
        "quarantines that student-day whole (student_day_study_time); at most 24.",
    )

    def limits(self) -> ValidationLimits:
        return ValidationLimits(
            max_response_time_ms=self.max_response_time_ms,
            max_attempts_per_student_day=self.max_attempts_per_student_day,
            max_study_ms_per_student_day=round(self.max_study_hours_per_student_day * 3_600_000),
        )


@asset_with_backfill_policy(
    op_tags=op_tags(BATCH_POD),
    partitions_def=daily,
    # A range of days is one vectorized run, not one run per day.
    backfill_policy=DAILY_BACKFILL,
    deps=[
        attempts,
        # `improvement` compares with the previous 7 days' stored features: the asset depends
        # on its own earlier partitions, so lineage and backfill ordering know it.
        dg.AssetDep(
            "features_topic_daily",
            partition_mapping=window_back(-IMPROVEMENT_LOOKBACK_DAYS, -1),
        ),
    ],
    group_name="features",
    kinds={"polars", "sql"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="features_topic_daily", description=desc)
        for name, desc in CHECKS.items()
    ],
    description="Per student x topic x UTC day: attempts, correct, accuracy, median response "
    "time (ms), hints, improvement vs the previous 7 days. Bad attempts go to attempt_rejects.",
    metadata={"table": "features_topic_daily"},
)
def features_topic_daily(
    context: dg.AssetExecutionContext, config: FeaturesConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    start, end = partition_days(context)
    now = utc_now()
    run = materialize_features(
        warehouse.engine,
        start,
        end,
        now=now,
        limits=config.limits(),
    )
    context.log.info(
        "features %s..%s: %d source rows, %d valid, %d rejected, %d feature rows",
        start,
        end,
        run.source_rows,
        run.valid_rows,
        run.rejected_rows,
        run.feature_rows,
    )
    return dg.MaterializeResult(
        metadata={
            "days": (end - start).days,
            "source_rows": run.source_rows,
            "valid_rows": run.valid_rows,
            "rejected_rows": run.rejected_rows,
            "feature_rows": run.feature_rows,
            "rejects_by_reason": run.rejects_by_reason,
            "seconds": {k: round(v, 3) for k, v in run.seconds.items()},
            "warehouse": warehouse.display_url(),
        },
        check_results=feature_check_results(warehouse, run, config.limits()),
    )
