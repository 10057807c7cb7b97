"""The daily features' checks: specs and the results computed from a ``FeaturesRun``."""

import dagster as dg

from seedtest_assets.core.attempts import REJECT_REASONS, ValidationLimits
from seedtest_assets.core.features_topic_daily.pipeline import (
    FeaturesRun,
    source_row_count,
    stored_feature_stats,
    stored_rejected_rows,
    stored_rejects,
    stored_student_day_rejects,
)
from seedtest_assets.defs.resources import WarehouseResource

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
