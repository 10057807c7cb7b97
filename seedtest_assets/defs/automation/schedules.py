"""Every schedule of the code location (all off by default; docs/operations.md).

Times are UTC, in the original's cron order: attempts checks 01:05, features 01:15, KPI
refresh 02:10, calibration Monday 03:10, reports Monday 04:00, inactivity 05:00.
"""

from collections.abc import Mapping
from datetime import timedelta

import dagster as dg

from seedtest_assets.core import settings
from seedtest_assets.defs.automation.jobs import (
    attempts_quality_job,
    features_topic_daily_job,
    mirt_weekly_job,
    report_artifacts_job,
    user_inactivity_job,
    weekly_kpi_job,
)
from seedtest_assets.defs.partitions import last_complete_week, week_key

attempts_quality_schedule = dg.ScheduleDefinition(
    name="attempts_quality_schedule",
    job=attempts_quality_job,
    cron_schedule="5 1 * * *",  # just before the daily features (01:15 UTC)
    execution_timezone="UTC",
)


# Daily features at 01:15 UTC (the original ``aggregate-features-daily``), for yesterday.
features_topic_daily_schedule = dg.build_schedule_from_partitioned_job(
    features_topic_daily_job,
    hour_of_day=1,
    minute_of_hour=15,
    name="features_topic_daily_schedule",
)


# The daily KPI refresh, 02:10 UTC (the original's `compute-daily-kpis` time).
#
# Each day refreshes the week that contains *yesterday*: Tuesday to Sunday that is the week in
# progress (its days so far); on Monday it is the week that just ended, now with its Sunday.
# The week's final numbers come from the Monday 03:10 ``mirt_weekly_job``, which recomputes
# ``weekly_kpi`` after the week's calibration and abilities (schedules below).
# After 01:15 (features of yesterday) and before 03:10.
@dg.schedule(
    cron_schedule="10 2 * * *",
    job=weekly_kpi_job,
    execution_timezone="UTC",
    name="weekly_kpi_schedule",
    description="Daily 02:10 UTC: refresh the KPIs of the week containing yesterday.",
)
def weekly_kpi_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.date() - timedelta(days=1)
    key = week_key(day)
    # One run per day and week: a re-evaluated tick launches nothing twice.
    return dg.RunRequest(run_key=f"weekly_kpi:{key}:{day.isoformat()}", partition_key=key)


# Weekly calibration, scoring and final KPIs, Mondays 03:10 UTC, for the week that just ended.
#
# The original ran calibration daily at 03:00 or weekly on Sunday at 03:10. A Sunday run would
# calibrate a week missing its last day, and a daily re-calibration moves the item scale under
# the week's abilities and reports. Monday 03:10 follows Sunday's features (01:15) and precedes
# the Monday 04:00 reports, so the reports use the complete week's calibration. The job also
# recomputes that week's ``weekly_kpi`` with the new abilities (its daily 02:10 refresh ran
# before them).
#
# The ``weekly`` partitions include the week in progress, so the schedule names the finished
# week explicitly (``last_complete_week``) rather than "the last partition".
@dg.schedule(
    cron_schedule="10 3 * * 1",
    job=mirt_weekly_job,
    execution_timezone="UTC",
    name="mirt_weekly_schedule",
    description="Mondays 03:10 UTC: calibrate, score and finalize the KPIs of the week that "
    "just ended.",
)
def mirt_weekly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    key = last_complete_week(context.scheduled_execution_time.replace(tzinfo=None))
    return dg.RunRequest(run_key=f"mirt_weekly:{key}", partition_key=key)


# Weekly reports, Mondays 04:00 UTC, for the week that just ended.
#
# After the Monday 03:10 calibration and scoring (``mirt_weekly_schedule``), as in the original.
# The weekly partitions include the week in progress (``end_offset=1``), so the schedule names
# the completed week itself rather than taking the latest partition.
#
# Fan-out: with ``SEEDTEST_REPORT_SHARDS=n`` (n > 1) the schedule requests n runs of the week,
# run ``i`` rendering the students with ``user_id % n == i``. Each run is its own process, or its
# own pod under ``K8sRunLauncher``; the queue's ``heavy`` limit bounds how many render at once.
SHARDS_ENV = "SEEDTEST_REPORT_SHARDS"
#: More shards than this is a typo, not a plan (each shard is a pod with 2 cores).
MAX_SHARDS = 64


def report_shards(environ: Mapping[str, str] | None = None) -> int:
    """``SEEDTEST_REPORT_SHARDS`` (default 1): runs the weekly report batch is split into."""
    return settings.positive_int(SHARDS_ENV, 1, maximum=MAX_SHARDS, environ=environ)


def shard_run_requests(week: str, shards: int) -> list[dg.RunRequest]:
    """One run request per shard of ``week``; run keys make a repeated tick launch nothing."""
    if shards == 1:
        return [dg.RunRequest(run_key=f"reports-{week}", partition_key=week)]
    return [
        dg.RunRequest(
            run_key=f"reports-{week}-shard-{i}-of-{shards}",
            partition_key=week,
            run_config={
                "ops": {
                    "report_artifacts": {
                        "config": {"shard_count": shards, "shard_index": i},
                    }
                }
            },
            tags={"seedtest/report_shard": f"{i + 1}/{shards}"},
        )
        for i in range(shards)
    ]


@dg.schedule(
    cron_schedule="0 4 * * 1",  # Monday 04:00
    execution_timezone="UTC",
    job=report_artifacts_job,
    name="report_artifacts_schedule",
    description="Reports of the week that just ended (default config: active students, "
    "MAX_USERS or 1000, HTML + PDF), split into SEEDTEST_REPORT_SHARDS runs.",
)
def report_artifacts_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    week = last_complete_week(context.scheduled_execution_time)
    return shard_run_requests(week, report_shards())


# Inactivity at 05:00 UTC (the original ``detect-inactivity``), for yesterday.
user_inactivity_schedule = dg.build_schedule_from_partitioned_job(
    user_inactivity_job,
    hour_of_day=5,
    minute_of_hour=0,
    name="user_inactivity_schedule",
)
