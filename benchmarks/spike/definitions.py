"""Toy code location for the partition spike (benchmarks/partition_spike.py).

Shaped like the real graph (docs/adr/0001-partitions.md), with no real compute:

- ``daily`` batch assets (BackfillPolicy.single_run): features_topic_daily, user_inactivity;
- ``weekly`` batch assets (BackfillPolicy.multi_run(1), one run per week): weekly_kpi,
  mirt_item_params, mirt_ability, report_artifacts. ``mirt_ability`` is the weekly batch
  "mirror": when its run carries the tag ``spike/students=all`` it logs one
  ``AssetMaterialization`` per registered student for ``student/mirt_ability`` from inside
  its own run;
- per-student assets ``student/mirt_ability`` and ``student/report_artifacts`` on the
  ``users`` dynamic partitions (BackfillPolicy.single_run);
- ``student/weekly_ability``: a weekly x users MultiPartitionsDefinition asset (option A); the
  weekly batch fills one week of it when its run carries ``spike/target=multi``;
- ``attempts_sensor``: reads ``$DAGSTER_HOME/inbox.json`` (a burst of user ids), registers
  them as ``users`` partitions and requests ONE run of ``student_burst_job`` with the ids
  in run config; that op logs one ``AssetMaterialization`` per student.

Timings measured inside runs are written to ``$DAGSTER_HOME/timings/<run_id>.json``.
"""

import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

PARTITIONS_START = "2025-01-06"

daily = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
weekly = dg.WeeklyPartitionsDefinition(start_date=PARTITIONS_START, day_offset=1, timezone="UTC")
users = dg.DynamicPartitionsDefinition(name="users")

# Exactly 52 complete Monday weeks before the current week, for the multi-partitions option.
_this_monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
weekly_52 = dg.WeeklyPartitionsDefinition(
    start_date=(_this_monday - timedelta(weeks=52)).isoformat(), day_offset=1, timezone="UTC"
)
week_x_user = dg.MultiPartitionsDefinition({"week": weekly_52, "user": users})

STUDENT_TAG = (
    "spike/students"  # "all" | "none" | N: per-student materializations the weekly batch logs
)
LOGGING_TAG = "spike/logging"  # "public" (context.log_event) | "batched" (internal batch path)
# "student": student/mirt_ability[user] | "multi": student/weekly_ability[week|user]
TARGET_TAG = "spike/target"
SLEEP = float(os.environ.get("SPIKE_SLEEP", "0.2"))


def _write_timing(context, payload: dict) -> None:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return
    out = Path(home) / "timings"
    out.mkdir(exist_ok=True)
    (out / f"{context.run_id}.json").write_text(json.dumps(payload))


def _student_materializations(user_ids, week_start: str, source: str, target: str = "student"):
    rng = random.Random(week_start)
    for uid in user_ids:
        yield dg.AssetMaterialization(
            asset_key=["student", "mirt_ability"]
            if target == "student"
            else ["student", "weekly_ability"],
            partition=uid
            if target == "student"
            else dg.MultiPartitionKey({"week": week_start, "user": uid}),
            metadata={
                "week_start": week_start,
                "theta": round(rng.gauss(0, 1), 4),
                "se": round(0.2 + rng.random() * 0.2, 4),
                "model": "2PL",
                "source": source,
            },
        )


def _log_student_materializations(
    context, user_ids, week_start: str, source: str, how: str = "public", target: str = "student"
) -> float:
    """Log one student/mirt_ability (or weekly_ability) materialization per user from this run.

    ``public``: ``context.log_event`` (one storage write per event).
    ``batched``: the internal path Dagster uses for a partition-range output
    (``DagsterEvent.asset_materialization(..., batch_metadata)``); the instance then writes
    ``DAGSTER_EVENT_BATCH_SIZE`` events per ``store_event_batch`` call (one write per event
    when that variable is unset). Internal API: pinned to dagster 1.13.27.
    """
    started = time.perf_counter()
    mats = _student_materializations(user_ids, week_start, source, target)
    if how == "public":
        for mat in mats:
            context.log_event(mat)
    else:
        from dagster._core.events import (
            DagsterEvent,
            DagsterEventBatchMetadata,
            generate_event_batch_id,
        )

        op_context = getattr(context, "op_execution_context", context)
        step_context = op_context.get_step_execution_context()
        batch_id, last = generate_event_batch_id(), len(user_ids) - 1
        for i, mat in enumerate(mats):
            DagsterEvent.asset_materialization(
                step_context, mat, DagsterEventBatchMetadata(batch_id, i == last)
            )
    return time.perf_counter() - started


# --- daily batch -------------------------------------------------------------------------


@dg.asset(partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run(), group_name="batch")
def features_topic_daily(context: dg.AssetExecutionContext) -> None:
    window = context.partition_time_window
    context.log.info(f"features for {window.start.date()}..{window.end.date()} (all users)")
    time.sleep(SLEEP)


@dg.asset(
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[features_topic_daily],
    group_name="batch",
)
def user_inactivity(context: dg.AssetExecutionContext) -> None:
    time.sleep(SLEEP)


# --- weekly batch ------------------------------------------------------------------------

_weekly = dict(
    partitions_def=weekly, backfill_policy=dg.BackfillPolicy.multi_run(1), group_name="batch"
)


@dg.asset(deps=[features_topic_daily], **_weekly)
def weekly_kpi(context: dg.AssetExecutionContext) -> None:
    time.sleep(SLEEP)


@dg.asset(deps=[features_topic_daily], **_weekly)
def mirt_item_params(context: dg.AssetExecutionContext) -> None:
    time.sleep(SLEEP)


@dg.asset(deps=[mirt_item_params], **_weekly)
def mirt_ability(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    week_start = context.partition_key
    mode = context.run.tags.get(STUDENT_TAG, "none")
    time.sleep(SLEEP)
    if mode == "none":
        return dg.MaterializeResult(metadata={"students": 0})
    t0 = time.perf_counter()
    user_ids = context.instance.get_dynamic_partitions("users")
    read_s = time.perf_counter() - t0
    if mode != "all":
        user_ids = user_ids[: int(mode)]
    how = context.run.tags.get(LOGGING_TAG, "public")
    target = context.run.tags.get(TARGET_TAG, "student")
    log_s = _log_student_materializations(
        context, user_ids, week_start, f"weekly_batch/{how}", how, target
    )
    _write_timing(
        context,
        {
            "kind": "weekly_batch",
            "target": target,
            "logging": how,
            "event_batch_size": os.environ.get("DAGSTER_EVENT_BATCH_SIZE", "0"),
            "students": len(user_ids),
            "read_users_s": read_s,
            "log_s": log_s,
        },
    )
    return dg.MaterializeResult(
        metadata={"students": len(user_ids), "log_seconds": round(log_s, 2)}
    )


@dg.asset(deps=[mirt_ability, weekly_kpi], **_weekly)
def report_artifacts(context: dg.AssetExecutionContext) -> None:
    time.sleep(SLEEP)


# --- per-student ---------------------------------------------------------------------------

_student = dict(
    partitions_def=users, backfill_policy=dg.BackfillPolicy.single_run(), group_name="student"
)


@dg.asset(key=["student", "mirt_ability"], deps=[mirt_item_params], **_student)
def student_mirt_ability(context: dg.AssetExecutionContext) -> None:
    context.log.info(f"re-score {len(context.partition_keys)} student(s)")
    time.sleep(SLEEP)


@dg.asset(key=["student", "report_artifacts"], deps=[student_mirt_ability], **_student)
def student_report_artifacts(context: dg.AssetExecutionContext) -> None:
    n = len(context.partition_keys)
    context.log.info(f"re-render {n} student(s)")
    _write_timing(context, {"kind": "student_report_artifacts", "partitions": n})
    time.sleep(SLEEP)


@dg.asset(key=["student", "weekly_ability"], partitions_def=week_x_user, group_name="student")
def student_weekly_ability(context: dg.AssetExecutionContext) -> None:
    time.sleep(SLEEP)


# --- the sensor's burst ------------------------------------------------------------------


class BurstConfig(dg.Config):
    user_ids: list[str]
    week_start: str


@dg.op
def score_burst(context: dg.OpExecutionContext, config: BurstConfig) -> None:
    time.sleep(SLEEP)
    log_s = _log_student_materializations(context, config.user_ids, config.week_start, "burst")
    _write_timing(context, {"kind": "burst", "students": len(config.user_ids), "log_s": log_s})


@dg.job
def student_burst_job():
    score_burst()


@dg.sensor(
    job=student_burst_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def attempts_sensor(context: dg.SensorEvaluationContext):
    inbox = Path(os.environ.get("DAGSTER_HOME", ".")) / "inbox.json"
    if not inbox.exists():
        return dg.SkipReason("no inbox")
    burst = json.loads(inbox.read_text())
    if burst["batch_id"] == context.cursor:
        return dg.SkipReason("burst already handled")
    ids = [str(u) for u in burst["user_ids"]]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=burst["batch_id"],
                run_config={
                    "ops": {
                        "score_burst": {
                            "config": {"user_ids": ids, "week_start": burst["week_start"]}
                        }
                    }
                },
                tags={"spike/burst": burst["batch_id"]},
            )
        ],
        dynamic_partitions_requests=[users.build_add_request(ids)],
        cursor=burst["batch_id"],
    )


defs = dg.Definitions(
    assets=[
        features_topic_daily,
        user_inactivity,
        weekly_kpi,
        mirt_item_params,
        mirt_ability,
        report_artifacts,
        student_mirt_ability,
        student_report_artifacts,
        student_weekly_ability,
    ],
    jobs=[student_burst_job],
    sensors=[attempts_sensor],
)
