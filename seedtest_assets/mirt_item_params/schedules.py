"""Weekly calibration, scoring and final KPIs, Mondays 03:10 UTC, for the week that just ended.

The original ran calibration daily at 03:00 or weekly on Sunday at 03:10. A Sunday run would
calibrate a week missing its last day, and a daily re-calibration moves the item scale under
the week's abilities and reports. Monday 03:10 follows Sunday's features (01:15) and precedes
the Monday 04:00 reports, so the reports use the complete week's calibration. The job also
recomputes that week's ``weekly_kpi`` with the new abilities (its daily 02:10 refresh ran
before them).

The ``weekly`` partitions include the week in progress, so the schedule names the finished
week explicitly (``last_complete_week``) rather than "the last partition".
"""

import dagster as dg

from seedtest_assets.mirt_ability.assets import mirt_weekly_job
from seedtest_assets.partitions import last_complete_week


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
