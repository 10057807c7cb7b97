"""Inactivity at 05:00 UTC (the original ``detect-inactivity``), for yesterday."""

import dagster as dg

from seedtest_assets.user_inactivity.assets import user_inactivity_job

user_inactivity_schedule = dg.build_schedule_from_partitioned_job(
    user_inactivity_job,
    hour_of_day=5,
    minute_of_hour=0,
    name="user_inactivity_schedule",
)
