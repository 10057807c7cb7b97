"""The daily KPI refresh, 02:10 UTC (the original's `compute-daily-kpis` time).

Each day refreshes the week that contains *yesterday*: Tuesday to Sunday that is the week in
progress (its days so far); on Monday it is the week that just ended, now with its Sunday.
The week's final numbers come from the Monday 03:10 ``mirt_weekly_job``, which recomputes
``weekly_kpi`` after the week's calibration and abilities (mirt_item_params/schedules.py).
After 01:15 (features of yesterday) and before 03:10.
"""

from datetime import timedelta

import dagster as dg

from seedtest_assets.partitions import week_key
from seedtest_assets.weekly_kpi.assets import weekly_kpi_job


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
