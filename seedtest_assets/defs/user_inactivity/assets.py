"""``user_inactivity`` asset and its checks (Dagster shell over the pipeline)."""

import dagster as dg
from pydantic import Field, model_validator

from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.user_inactivity.compute import InactivityThresholds
from seedtest_assets.core.user_inactivity.pipeline import (
    materialize_inactivity,
    stored_inactivity_stats,
)
from seedtest_assets.core.workloads import BATCH_POD, op_tags
from seedtest_assets.defs.features_topic_daily.assets import features_topic_daily
from seedtest_assets.defs.partitions import (
    DAILY_BACKFILL,
    asset_with_backfill_policy,
    daily,
    partition_days,
)
from seedtest_assets.defs.resources import WarehouseResource


class InactivityConfig(dg.Config):
    """Status thresholds in days (the operator's policy; see docs/features.md)."""

    at_risk_after_days: int = Field(default=7, ge=1, le=365)
    inactive_after_days: int = Field(default=14, ge=1, le=365)

    @model_validator(mode="after")
    def _ordered(self):
        if self.inactive_after_days <= self.at_risk_after_days:
            raise ValueError("inactive_after_days must be greater than at_risk_after_days")
        return self


@asset_with_backfill_policy(
    op_tags=op_tags(BATCH_POD),
    partitions_def=daily,
    backfill_policy=DAILY_BACKFILL,
    deps=[features_topic_daily],
    group_name="features",
    kinds={"polars", "sql"},
    check_specs=[
        dg.AssetCheckSpec(
            "every_student_has_a_row",
            asset="user_inactivity",
            description="One row per registered student per day.",
        ),
        dg.AssetCheckSpec(
            "status_consistent",
            asset="user_inactivity",
            description="never_active exactly when there is no last attempt.",
        ),
    ],
    description="Per student and day: last valid attempt, days inactive, and a status "
    "(active / at_risk / inactive / never_active) from configurable thresholds.",
    metadata={"table": "user_inactivity"},
)
def user_inactivity(
    context: dg.AssetExecutionContext, config: InactivityConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    start, end = partition_days(context)
    thresholds = InactivityThresholds(config.at_risk_after_days, config.inactive_after_days)
    run = materialize_inactivity(
        warehouse.engine,
        start,
        end,
        now=utc_now(),
        thresholds=thresholds,
    )
    stats = stored_inactivity_stats(warehouse.engine, start, end)
    return dg.MaterializeResult(
        metadata={
            "rows": run.rows,
            "status_counts_last_day": run.status_counts,
            "thresholds": {
                "at_risk_after_days": thresholds.at_risk_after_days,
                "inactive_after_days": thresholds.inactive_after_days,
            },
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="every_student_has_a_row",
                passed=stats["rows"] == stats["expected"],
                metadata={"rows": stats["rows"], "expected": stats["expected"]},
            ),
            dg.AssetCheckResult(
                check_name="status_consistent",
                passed=stats["bad_status"] == 0,
                metadata={"bad_rows": stats["bad_status"]},
            ),
        ],
    )
