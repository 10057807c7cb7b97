"""The ``attempts`` source asset and its whole-table quality check (Dagster shell)."""

from datetime import timedelta

import dagster as dg

from seedtest_assets.attempts.read import source_anomalies
from seedtest_assets.resources import WarehouseResource
from seedtest_assets.settings import utc_now
from seedtest_assets.workloads import BATCH_POD, batch_job_tags, op_tags

attempts = dg.AssetSpec(
    "attempts",
    description=(
        "Raw exam attempts written by the exam product (table `attempts`). External: Dagster "
        "observes it; the daily features validate it and quarantine bad rows."
    ),
    group_name="sources",
    kinds={"sql"},
    metadata={"table": "attempts"},
)


@dg.asset_check(
    asset=attempts.key,
    op_tags=op_tags(BATCH_POD),
    description=(
        "Rows no daily partition can own or reconcile: NULL, undated (SQLite: neither a "
        "timestamp nor a number) or future `attempted_at`, ids that are not integers (SQLite), "
        "and ids used by more than one row anywhere in the table; also counts numeric "
        "`attempted_at` (SQLite: quarantined under their day). Warns with counts and samples."
    ),
)
def attempts_undatable_or_duplicate(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    future = utc_now() + timedelta(minutes=5)
    with warehouse.engine.connect() as conn:
        found = source_anomalies(conn, future)
    counted = (
        "null_attempted_at",
        "future_attempted_at",
        "duplicated_ids",
        "undatable_attempted_at",
        "numeric_attempted_at",
        "non_integer_ids",
    )
    return dg.AssetCheckResult(
        passed=sum(found[k] for k in counted) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=found,
    )


attempts_quality_job = dg.define_asset_job(
    "attempts_quality_job",
    selection=dg.AssetSelection.checks_for_assets(attempts.key),
    description="Whole-table checks of the raw attempts feed.",
    tags=batch_job_tags(),
)

attempts_quality_schedule = dg.ScheduleDefinition(
    name="attempts_quality_schedule",
    job=attempts_quality_job,
    cron_schedule="5 1 * * *",  # just before the daily features (01:15 UTC)
    execution_timezone="UTC",
)
