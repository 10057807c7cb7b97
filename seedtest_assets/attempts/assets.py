"""The ``attempts`` source asset and its whole-table quality check (Dagster shell)."""

from datetime import timedelta

import dagster as dg
from sqlalchemy import func, select

from seedtest_assets.resources import WarehouseResource
from seedtest_assets.settings import utc_now
from seedtest_assets.warehouse import schema as s
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
        "Rows no daily partition can own or reconcile: NULL or future `attempted_at`, and ids "
        "used by more than one row anywhere in the table. Fails with counts and sample ids."
    ),
)
def attempts_undatable_or_duplicate(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    a = s.attempts
    now = utc_now()
    dup_ids = select(a.c.id).group_by(a.c.id).having(func.count() > 1).subquery()
    with warehouse.engine.connect() as conn:
        null_ts = conn.execute(select(func.count()).where(a.c.attempted_at.is_(None))).scalar_one()
        future = conn.execute(
            select(func.count()).where(a.c.attempted_at > now + timedelta(minutes=5))
        ).scalar_one()
        dups = conn.execute(select(func.count()).select_from(dup_ids)).scalar_one()
        sample = (
            conn.execute(
                select(a.c.id)
                .where(
                    (a.c.attempted_at.is_(None)) | (a.c.attempted_at > now + timedelta(minutes=5))
                )
                .limit(10)
            )
            .scalars()
            .all()
        )
        sample_dups = conn.execute(select(dup_ids.c.id).limit(10)).scalars().all()
    return dg.AssetCheckResult(
        passed=(null_ts + future + dups) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "null_attempted_at": int(null_ts),
            "future_attempted_at": int(future),
            "duplicated_ids": int(dups),
            "sample_undatable_ids": [int(i) for i in sample],
            "sample_duplicated_ids": [int(i) for i in sample_dups],
        },
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
