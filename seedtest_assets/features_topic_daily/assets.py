"""``features_topic_daily`` asset and its checks (Dagster shell over the pipeline)."""

import dagster as dg
from pydantic import Field

from seedtest_assets.attempts import REJECT_REASONS, ValidationLimits
from seedtest_assets.attempts.assets import attempts
from seedtest_assets.features_topic_daily.compute import IMPROVEMENT_LOOKBACK_DAYS
from seedtest_assets.features_topic_daily.pipeline import (
    FeaturesRun,
    materialize_features,
    source_row_count,
    stored_feature_stats,
    stored_rejected_rows,
    stored_rejects,
    stored_student_day_rejects,
)
from seedtest_assets.partitions import DAILY_BACKFILL, daily, partition_days
from seedtest_assets.resources import WarehouseResource
from seedtest_assets.settings import utc_now
from seedtest_assets.workloads import BATCH_POD, batch_job_tags, op_tags

CHECKS = {
    "attempts_reconcile": "Every raw attempt of the days is either in the features or in "
    "attempt_rejects: source rows = valid + rejected (counted in the warehouse).",
    "no_rejected_attempts": "Warns when attempts were quarantined; metadata lists counts by "
    "reason and sample ids (see attempt_rejects).",
    "values_in_range": "accuracy in [0,1], correct <= attempts, attempts > 0, rt_median >= 0, "
    "improvement in [-1,1].",
    "plausible_student_days": "Warns when a student-day exceeded the plausibility limits "
    "(attempts or summed response time in one UTC day; defaults 1,000 and 16 h): all of its "
    "attempts were quarantined (student_day_attempts / student_day_study_time). Metadata "
    "lists the student-days.",
}


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


@dg.asset(
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
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-IMPROVEMENT_LOOKBACK_DAYS,
                end_offset=-1,
                allow_nonexistent_upstream_partitions=True,
            ),
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


def feature_check_results(
    warehouse: WarehouseResource, run: FeaturesRun, limits: ValidationLimits | None = None
) -> list[dg.AssetCheckResult]:
    """Evaluate the checks against what the warehouse now holds for the run's days."""
    engine, start, end = warehouse.engine, run.start, run.end
    limits = limits or ValidationLimits()
    stats = stored_feature_stats(engine, start, end)
    source = source_row_count(engine, start, end)
    rejected = stored_rejected_rows(engine, start, end)
    sample = stored_rejects(engine, start, end, limit=10)
    implausible = stored_student_day_rejects(engine, start, end)
    violations = {k: v for k, v in stats.items() if k not in ("rows", "attempts") and v}
    return [
        dg.AssetCheckResult(
            check_name="attempts_reconcile",
            passed=source == stats["attempts"] + rejected,
            metadata={
                "source_rows": source,
                "valid_rows": stats["attempts"],
                "rejected_rows": rejected,
            },
        ),
        dg.AssetCheckResult(
            check_name="no_rejected_attempts",
            passed=rejected == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rejected_rows": rejected,
                "by_reason": run.rejects_by_reason,
                "reasons": {k: REJECT_REASONS[k] for k in run.rejects_by_reason},
                "sample_attempt_ids": [int(i) for i in sample["attempt_id"]],
            },
        ),
        dg.AssetCheckResult(
            check_name="values_in_range",
            passed=not violations,
            metadata={"rows": stats["rows"], "violations": violations},
        ),
        dg.AssetCheckResult(
            check_name="plausible_student_days",
            passed=implausible == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "quarantined_attempts": implausible,
                "student_days": run.student_days.height,
                "sample_student_days": [
                    f"student {r['user_id']} on {r['day']}: {r['attempts']} attempts, "
                    f"{r['study_ms'] / 3_600_000:.1f} h"
                    for r in run.student_days.head(10).iter_rows(named=True)
                ],
                "max_attempts_per_student_day": limits.max_attempts_per_student_day,
                "max_study_hours_per_student_day": limits.max_study_ms_per_student_day / 3_600_000,
            },
        ),
    ]


features_topic_daily_job = dg.define_asset_job(
    "features_topic_daily_job", selection=[features_topic_daily], tags=batch_job_tags()
)
