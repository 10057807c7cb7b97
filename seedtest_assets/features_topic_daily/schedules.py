"""Daily features at 01:15 UTC (the original ``aggregate-features-daily``), for yesterday."""

import dagster as dg

from seedtest_assets.features_topic_daily.assets import features_topic_daily_job

features_topic_daily_schedule = dg.build_schedule_from_partitioned_job(
    features_topic_daily_job,
    hour_of_day=1,
    minute_of_hour=15,
    name="features_topic_daily_schedule",
)
