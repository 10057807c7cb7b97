"""The partition model (see docs/adr/0001-partitions.md for the measurements behind it).

- ``daily``: one partition per UTC day, for ``features_topic_daily`` and ``user_inactivity``.
  A range of days runs as one vectorized run (``BackfillPolicy.single_run``).
- ``weekly``: Monday-to-Sunday UTC weeks keyed by the Monday, for ``weekly_kpi``,
  ``mirt_item_params``, ``mirt_ability`` and ``report_artifacts``: each week's batch covers the
  whole population in one run.
- ``users``: a dynamic partition per student (key = ``str(user_id)``), registered by the
  attempts sensor, for the per-student assets under the ``student/`` key prefix: the place to
  see one student's state and to re-score or re-render one student (or a handful) alone.
  Weekly batches and the sensor's bursts record per-student materializations in bulk instead
  of launching a run per student.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import dagster as dg

#: First partition. Overridable so a deployment with older history can backfill further back.
PARTITIONS_START = os.environ.get("SEEDTEST_PARTITIONS_START", "2025-01-06")

daily = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

# day_offset=1: weeks start on Monday, as the original's --week YYYY-MM-DD (a Monday).
weekly = dg.WeeklyPartitionsDefinition(start_date=PARTITIONS_START, day_offset=1, timezone="UTC")

users = dg.DynamicPartitionsDefinition(name="users")


def user_partition_key(user_id: int) -> str:
    """The ``users`` partition key of a student."""
    return str(int(user_id))


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's time partitions as UTC days ``[start, end)`` (one partition or a range)."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def week_start_of(day: date) -> date:
    """The Monday starting ``day``'s week."""
    return day - timedelta(days=day.weekday())
