"""Weekly reports, Mondays 04:00 UTC, for the week that just ended.

After the Monday 03:10 calibration and scoring (``mirt_weekly_schedule``), as in the original.
The weekly partitions include the week in progress (``end_offset=1``), so the schedule names
the completed week itself rather than taking the latest partition.
"""

import dagster as dg

from seedtest_assets.partitions import last_complete_week
from seedtest_assets.report_artifacts.assets import report_artifacts_job


@dg.schedule(
    cron_schedule="0 4 * * 1",  # Monday 04:00
    execution_timezone="UTC",
    job=report_artifacts_job,
    name="report_artifacts_schedule",
    description="Reports of the week that just ended (default config: active students, "
    "MAX_USERS or 1000, HTML + PDF).",
)
def report_artifacts_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    week = last_complete_week(context.scheduled_execution_time)
    return dg.RunRequest(run_key=f"reports-{week}", partition_key=week)
