"""Weekly calibration + scoring, Mondays 03:10 UTC, for the week that just ended.

The original ran calibration daily at 03:00 or weekly on Sunday at 03:10. A Sunday run would
calibrate a week missing its last day, and a daily re-calibration moves the item scale under
the week's abilities and reports. Monday 03:10 follows Sunday's features (01:15) and precedes
the Monday 04:00 reports, so the reports use the complete week's calibration.
"""

import dagster as dg

from seedtest_assets.mirt_ability.assets import mirt_weekly_job

mirt_weekly_schedule = dg.build_schedule_from_partitioned_job(
    mirt_weekly_job,
    day_of_week=1,  # Monday
    hour_of_day=3,
    minute_of_hour=10,
    name="mirt_weekly_schedule",
)
