"""Weekly reports, Mondays 04:00 UTC, for the week that just ended.

After the Monday 03:10 calibration and scoring (``mirt_weekly_schedule``), as in the original.
The weekly partitions include the week in progress (``end_offset=1``), so the schedule names
the completed week itself rather than taking the latest partition.

Fan-out: with ``SEEDTEST_REPORT_SHARDS=n`` (n > 1) the schedule requests n runs of the week,
run ``i`` rendering the students with ``user_id % n == i``. Each run is its own process, or its
own pod under ``K8sRunLauncher``; the queue's ``heavy`` limit bounds how many render at once.
"""

import os
from collections.abc import Mapping

import dagster as dg

from seedtest_assets.partitions import last_complete_week
from seedtest_assets.report_artifacts.assets import report_artifacts_job

SHARDS_ENV = "SEEDTEST_REPORT_SHARDS"
#: More shards than this is a typo, not a plan (each shard is a pod with 2 cores).
MAX_SHARDS = 64


def report_shards(environ: Mapping[str, str] | None = None) -> int:
    """``SEEDTEST_REPORT_SHARDS`` (default 1): runs the weekly report batch is split into."""
    raw = (os.environ if environ is None else environ).get(SHARDS_ENV, "").strip() or "1"
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{SHARDS_ENV} must be an integer, got {raw!r}") from None
    if not 1 <= n <= MAX_SHARDS:
        raise ValueError(f"{SHARDS_ENV} must be between 1 and {MAX_SHARDS}, got {n}")
    return n


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
