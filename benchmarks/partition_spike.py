"""Partition-model spike on PostgreSQL instance storage (evidence for docs/adr/0001-partitions.md).

Creates a throw-away PostgreSQL database and DAGSTER_HOME, starts the real ``dagster-webserver``
and ``dagster-daemon run`` against the toy code location ``benchmarks/spike/definitions.py``
and measures:

1. registering / reading N ``users`` dynamic partition keys;
2. the UI's PartitionHealthQuery (GraphQL) for the per-user asset, before and after N
   per-student materializations exist, plus the per-partition detail/stale queries;
3. ONE run logging N per-student ``AssetMaterialization`` events (weekly batch mirror) and a
   sensor burst of 1,000 students (one run per tick);
4. partition backfills: a mixed daily(single_run) -> weekly(multi_run(1)) backfill of 3 weeks,
   1,000 non-contiguous user partitions (single_run) and ALL N user partitions (single_run;
   run last, capped) - runs launched, time; bounded waits;
5. a weekly x users MultiPartitionsDefinition asset: number of keys and PartitionHealthQuery time,
   empty and with one week x all users materialized (run before 4b).

Per-student events are logged two ways: ``context.log_event`` (public API, ``--public-events``
students) and Dagster's internal batched event path with DAGSTER_EVENT_BATCH_SIZE
(``--event-batch-size``, all students); see benchmarks/spike/definitions.py.

Usage (from the repo root)::

    .venv/bin/python benchmarks/partition_spike.py              # full run, 100,000 users
    .venv/bin/python benchmarks/partition_spike.py --users 2000 # quick check

Everything runs on 127.0.0.1; subprocesses are stopped and the database dropped at the end
(``--keep`` keeps both the DAGSTER_HOME and the database for inspection).
"""

import argparse
import contextlib
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_main

ROOT = Path(__file__).resolve().parents[1]
SPIKE_DEFS = ROOT / "benchmarks" / "spike" / "definitions.py"
BIN = Path(sys.executable).parent
PG = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]
LOCATION = "spike"

PARTITION_HEALTH_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses {
          materializedPartitions materializingPartitions failedPartitions
        }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
              ... on DefaultPartitionStatuses {
                materializedPartitions materializingPartitions failedPartitions
              }
            }
          }
        }
      }
    }
  }
}"""

PARTITION_STATS_QUERY = """
query PartitionStats($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode { partitionStats { numMaterialized numPartitions numFailed numMaterializing } }
  }
}"""

# What the UI asks when one partition (one student) is selected on the asset's partitions page.
PARTITION_DETAIL_QUERY = """
query AssetPartitionDetailQuery($assetKey: AssetKeyInput!, $partitionKey: String!) {
  assetOrError(assetKey: $assetKey) {
    ... on Asset {
      definition { latestRunForPartition(partition: $partitionKey) { id status endTime } }
      assetEventHistory(partitions: [$partitionKey], limit: 1000,
                        eventTypeSelectors: [MATERIALIZATION, OBSERVATION, FAILED_TO_MATERIALIZE]) {
        results {
          ... on MaterializationEvent {
            runId partition timestamp
            metadataEntries {
              label ... on TextMetadataEntry { text } ... on FloatMetadataEntry { floatValue }
            }
          }
        }
      }
    }
  }
}"""

PARTITION_STALE_QUERY = """
query AssetPartitionStaleQuery($assetKey: AssetKeyInput!, $partitionKey: String!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      staleStatus(partition: $partitionKey)
      staleCauses(partition: $partitionKey) { key { path } reason category dependency { path } }
    }
  }
}"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""

CANCEL_BACKFILL = """
mutation Cancel($backfillId: String!) {
  cancelPartitionBackfill(backfillId: $backfillId) { __typename ... on PythonError { message } }
}"""

WORKSPACE_QUERY = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


# --- small helpers -------------------------------------------------------------------------

ROWS: list[tuple[str, str, str]] = []


def record(section: str, what: str, value) -> None:
    ROWS.append((section, what, str(value)))
    print(f"  [{section}] {what}: {value}", flush=True)


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(
        [*PG, "-d", db, "-c", sql], check=True, capture_output=True, text=True
    ).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_spike_defs():
    spec = importlib.util.spec_from_file_location("spike_definitions", SPIKE_DEFS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Gql:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.session = requests.Session()

    def __call__(self, query: str, variables: dict | None = None, timeout: float = 120.0):
        """Returns (data, seconds); raises requests.Timeout on timeout."""
        t0 = time.perf_counter()
        resp = self.session.post(
            self.url, json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        seconds = time.perf_counter() - t0
        resp.raise_for_status()
        body = resp.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {json.dumps(body['errors'])[:2000]}")
        return body["data"], seconds


def akey(*path: str) -> dict:
    return {"path": list(path)}


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = ""):
    """Poll predicate() until it returns a truthy value or timeout; returns the value or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    print(f"  ! timed out after {timeout:.0f}s waiting for {what}", flush=True)
    return None


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"


# --- the instance ---------------------------------------------------------------------------


def write_home(home: Path, db: str, max_concurrent_runs: int) -> Path:
    (home / "dagster.yaml").write_text(
        f"""storage:
  postgres:
    postgres_url: postgresql+psycopg2://postgres@127.0.0.1:5432/{db}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: {max_concurrent_runs}
    dequeue_interval_seconds: 2
telemetry:
  enabled: false
"""
    )
    workspace = home / "workspace.yaml"
    workspace.write_text(
        f"""load_from:
  - python_file:
      relative_path: {SPIKE_DEFS}
      working_directory: {ROOT}
      location_name: {LOCATION}
"""
    )
    return workspace


def start(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen, name: str) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # our own session: the server and its children
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print(f"  ! {name} did not stop on SIGTERM; SIGKILL", flush=True)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def leftover_pids(marker: str) -> list[tuple[int, str]]:
    """Processes (ours) whose command line mentions this spike's DAGSTER_HOME / workspace."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (p / "environ").read_bytes()
        except OSError:
            continue
        if marker in cmd or marker.encode() in env:
            pids.append((int(p.name), cmd[:160]))
    return pids


# --- runs and backfills --------------------------------------------------------------------


def launch_asset_run(gql: Gql, asset_path: list[str], tags: dict) -> str:
    data, _ = gql(
        LAUNCH_RUN,
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [akey(*asset_path)],
                },
                "runConfigData": {},
                "mode": "default",
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            }
        },
    )
    res = data["launchRun"]
    if res["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun failed: {json.dumps(res)[:2000]}")
    return res["run"]["runId"]


def launch_backfill(gql: Gql, params: dict) -> str:
    data, _ = gql(LAUNCH_BACKFILL, {"backfillParams": params}, timeout=600)
    res = data["launchPartitionBackfill"]
    if res["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill failed: {json.dumps(res)[:2000]}")
    return res["backfillId"]


def wait_run(instance, run_id: str, timeout: float):
    from dagster import DagsterRunStatus

    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

    def finished():
        run = instance.get_run_by_id(run_id)
        return run if run and run.status in done else None

    return wait_for(finished, timeout, 1.0, f"run {run_id}")


def run_durations(instance, run_ids) -> list[float]:
    out = []
    for rid in run_ids:
        stats = instance.get_run_stats(rid)
        if stats.start_time and stats.end_time:
            out.append(stats.end_time - stats.start_time)
    return out


def backfill_runs(instance, backfill_id: str):
    from dagster import RunsFilter

    return instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))


def describe_run(record) -> str:
    run = record.dagster_run
    tags = run.tags
    if "dagster/asset_partition_range_start" in tags:
        start, end = (tags[f"dagster/asset_partition_range_{k}"] for k in ("start", "end"))
        part = f"{start}..{end}"
    else:
        part = tags.get("dagster/partition", "-")
    assets = sorted("/".join(k.path) for k in (run.asset_selection or []))
    return f"{'+'.join(assets)} [{part}] {run.status.value}"


def wait_backfill(instance, backfill_id: str, timeout: float, sample_every: float = 15.0):
    """Poll a backfill until terminal or timeout. Returns (finished, seconds, samples)."""
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    t0 = time.monotonic()
    samples = []
    next_sample = 0.0
    while True:
        elapsed = time.monotonic() - t0
        bf = instance.get_backfill(backfill_id)
        if elapsed >= next_sample:
            recs = backfill_runs(instance, backfill_id)
            ok = sum(r.dagster_run.status.value == "SUCCESS" for r in recs)
            samples.append((round(elapsed), len(recs), ok))
            print(
                f"    t={elapsed:5.0f}s backfill {bf.status.value}: "
                f"runs {len(recs)}, succeeded {ok}",
                flush=True,
            )
            next_sample += sample_every
        if bf.status in BULK_ACTION_TERMINAL_STATUSES:
            return True, time.monotonic() - t0, samples, bf.status.value
        if elapsed > timeout:
            return False, elapsed, samples, bf.status.value
        time.sleep(1.0)


def cancel_backfill(gql: Gql, instance, backfill_id: str, timeout: float = 180.0) -> None:
    from dagster import DagsterRunStatus
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    gql(CANCEL_BACKFILL, {"backfillId": backfill_id})
    time.sleep(5)  # the daemon sees CANCELING and stops creating runs
    for rec in backfill_runs(instance, backfill_id):
        if rec.dagster_run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED):
            instance.report_run_canceled(rec.dagster_run, message="spike cleanup")
    wait_for(
        lambda: instance.get_backfill(backfill_id).status in BULK_ACTION_TERMINAL_STATUSES,
        timeout,
        2.0,
        f"backfill {backfill_id} to cancel",
    )
    # Anything still queued is marked canceled so later measurements run on an idle daemon.
    for rec in backfill_runs(instance, backfill_id):
        if rec.dagster_run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED):
            instance.report_run_canceled(rec.dagster_run, message="spike cleanup")
    active = (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
    wait_for(
        lambda: (
            not any(r.dagster_run.status in active for r in backfill_runs(instance, backfill_id))
        ),
        120,
        2.0,
        "in-flight backfill runs to stop",
    )


# --- the measurements -----------------------------------------------------------------------


def health(gql: Gql, path: list[str], timeout: float = 120.0):
    data, seconds = gql(PARTITION_HEALTH_QUERY, {"assetKey": {"path": path}}, timeout=timeout)
    node = data["assetNodeOrError"]
    dims = node["partitionKeysByDimension"]
    statuses = node["assetPartitionStatuses"]
    return seconds, dims, statuses


def weekly_batch_run(
    instance,
    gql: Gql,
    home: Path,
    spike,
    args,
    week: str,
    students: str,
    how: str,
    target: str = "student",
    section: str = "3",
) -> None:
    """Materialize the weekly mirt_ability partition; it logs per-student materializations."""
    t0 = time.monotonic()
    tags = {
        "dagster/partition": week,
        spike.STUDENT_TAG: students,
        spike.LOGGING_TAG: how,
        spike.TARGET_TAG: target,
    }
    run_id = launch_asset_run(gql, ["mirt_ability"], tags)
    run = wait_run(instance, run_id, args.run_timeout)
    wall = time.monotonic() - t0
    into = "student/mirt_ability" if target == "student" else "student/weekly_ability"
    label = f"weekly batch run {week} -> {into}, {how} logging"
    if run is None:
        record(section, label, f"NOT FINISHED within {args.run_timeout:.0f}s")
        return
    path = home / "timings" / f"{run_id}.json"
    if run.status.value != "SUCCESS" or not path.exists():
        record(section, label, f"{run.status.value} (see run {run_id})")
        return
    timing = json.loads(path.read_text())
    dur = run_durations(instance, [run_id])
    batch = f", DAGSTER_EVENT_BATCH_SIZE={timing['event_batch_size']}" if how == "batched" else ""
    record(
        section,
        f"{label}: {timing['students']:,} AssetMaterialization events{batch}",
        fmt_s(timing["log_s"]),
    )
    record(section, "  per event", f"{1000 * timing['log_s'] / max(1, timing['students']):.2f} ms")
    record(
        section,
        "  read all user ids from the instance inside the run",
        fmt_s(timing["read_users_s"]),
    )
    record(
        section,
        "  run start->end / launch->done (queue + process start)",
        f"{fmt_s(dur[0]) if dur else '?'} / {fmt_s(wall)}",
    )


def planned_events(db: str, run_ids: list[str]) -> int:
    if not run_ids:
        return 0
    ids = ",".join(f"'{r}'" for r in run_ids)
    out = psql(
        "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION_PLANNED'"
        f" and run_id in ({ids})",
        db,
    )
    return int(out.strip() or 0)


def measure(args, instance, gql: Gql, home: Path, spike, db: str, daemon) -> None:
    n = args.users
    user_keys = [str(i) for i in range(1, n + 1)]
    student = ["student", "mirt_ability"]

    # 1. registering / reading the dynamic partitions ------------------------------------------
    print("\n== 1. users dynamic partitions", flush=True)
    t0 = time.perf_counter()
    for i in range(0, n, args.chunk):
        instance.add_dynamic_partitions("users", user_keys[i : i + args.chunk])
    record(
        "1",
        f"add_dynamic_partitions {n:,} keys, chunk {args.chunk:,}",
        fmt_s(time.perf_counter() - t0),
    )
    t0 = time.perf_counter()
    got = instance.get_dynamic_partitions("users")
    record("1", f"get_dynamic_partitions ({len(got):,} keys)", fmt_s(time.perf_counter() - t0))
    assert len(got) == n, len(got)
    t0 = time.perf_counter()
    instance.add_dynamic_partitions("users", user_keys[:1000])  # sensor re-adding known ids
    record("1", "re-add 1,000 existing keys (idempotent)", fmt_s(time.perf_counter() - t0))

    # 2. UI partition status, no materializations ----------------------------------------------
    print("\n== 2. PartitionHealthQuery, no materializations", flush=True)
    for attempt in ("1st", "2nd"):
        s, dims, st = health(gql, student)
        record("2", f"student/mirt_ability health query, 0 materialized ({attempt})", fmt_s(s))
    assert len(dims[0]["partitionKeys"]) == n
    _, s = gql(PARTITION_STATS_QUERY, {"assetKey": {"path": student}})
    record("2", "student/mirt_ability partitionStats query, 0 materialized", fmt_s(s))

    # 3a. weekly batch runs logging per-student materializations -------------------------------
    print("\n== 3. one run logging per-student AssetMaterialization events", flush=True)
    weeks = spike.weekly.get_partition_keys()
    week = weeks[-1]
    n_public = min(n, args.public_events)
    weekly_batch_run(instance, gql, home, spike, args, weeks[-2], str(n_public), "public")
    weekly_batch_run(instance, gql, home, spike, args, week, "all", "batched")

    # 3b. the sensor's burst: 1,000 students in one tick -> one run ----------------------------
    rng = random.Random(7)
    n_new = min(10, args.burst)
    burst_ids = sorted(rng.sample(range(1, n + 1), args.burst - n_new)) + list(
        range(n + 1, n + 1 + n_new)
    )
    batch_id = f"burst-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    (home / "inbox.json").write_text(
        json.dumps({"batch_id": batch_id, "week_start": week, "user_ids": burst_ids})
    )
    from dagster import RunsFilter

    def burst_runs():
        return instance.get_run_records(RunsFilter(tags={"spike/burst": batch_id}))

    recs = wait_for(burst_runs, 120, 1.0, "the sensor's burst run")
    if recs:
        created = time.monotonic() - t0
        brun = wait_run(instance, recs[0].dagster_run.run_id, args.run_timeout)
        wall = time.monotonic() - t0
        time.sleep(args.sensor_settle)  # let further ticks happen: they must not add runs
        n_runs = len(burst_runs())
        record(
            "3",
            f"burst of {args.burst:,} students ({n_new} new): runs requested by the sensor",
            n_runs,
        )
        record("3", "  inbox written -> run created (sensor tick)", fmt_s(created))
        if brun is not None:
            timing = json.loads((home / "timings" / f"{brun.run_id}.json").read_text())
            dur = run_durations(instance, [brun.run_id])
            record(
                "3",
                f"  burst run status / logging {timing['students']:,} events",
                f"{brun.status.value} / {fmt_s(timing['log_s'])}",
            )
            record(
                "3",
                "  run start->end / inbox->done",
                f"{fmt_s(dur[0]) if dur else '?'} / {fmt_s(wall)}",
            )
        record(
            "3",
            "  users partitions after the burst",
            f"{len(instance.get_dynamic_partitions('users')):,}",
        )
    else:
        record("3", "burst", "sensor created no run within 120 s")

    # 2b / 3c. UI status after the materializations --------------------------------------------
    print("\n== 2b. PartitionHealthQuery after per-student materializations", flush=True)
    for attempt in ("1st", "2nd"):
        s, dims, st = health(gql, student)
        record(
            "2",
            f"student/mirt_ability health query, "
            f"{len(st['materializedPartitions']):,} materialized ({attempt})",
            fmt_s(s),
        )
    record(
        "3",
        "UI shows as materialized (PartitionHealthQuery)",
        f"{len(st['materializedPartitions']):,} of {len(dims[0]['partitionKeys']):,}",
    )
    data, s = gql(PARTITION_STATS_QUERY, {"assetKey": {"path": student}})
    record("2", f"partitionStats query: {data['assetNodeOrError']['partitionStats']}", fmt_s(s))
    probe = str(burst_ids[0])
    data, s = gql(PARTITION_DETAIL_QUERY, {"assetKey": {"path": student}, "partitionKey": probe})
    events = data["assetOrError"]["assetEventHistory"]["results"]
    latest = max(events, key=lambda e: float(e["timestamp"])) if events else None
    meta = {
        m["label"]: m.get("text", m.get("floatValue"))
        for m in (latest or {}).get("metadataEntries", [])
    }
    record("2", f"partition detail query for student {probe} ({len(events)} events)", fmt_s(s))
    record(
        "3",
        f"  student {probe} latest: week_start={meta.get('week_start')} "
        f"source={meta.get('source')} theta={meta.get('theta')}",
        "",
    )
    data, s = gql(PARTITION_STALE_QUERY, {"assetKey": {"path": student}, "partitionKey": probe})
    record(
        "2",
        f"partition stale query for student {probe}: {data['assetNodeOrError']['staleStatus']}",
        fmt_s(s),
    )

    # 4a. mixed-policy backfill: daily single_run -> weekly multi_run(1), 3 weeks --------------
    print("\n== 4a. backfill 3 weeks: daily (single_run) -> weekly (multi_run(1))", flush=True)
    weeks = weeks[-3:]
    days = [d for d in spike.daily.get_partition_keys() if weeks[0] <= d < week_after(weeks[-1])]
    weekly_assets = ["weekly_kpi", "mirt_item_params", "mirt_ability", "report_artifacts"]
    by_asset = [
        {
            "assetKey": akey("features_topic_daily"),
            "partitions": {"range": {"start": days[0], "end": days[-1]}},
        }
    ]
    by_asset += [
        {"assetKey": akey(a), "partitions": {"range": {"start": weeks[0], "end": weeks[-1]}}}
        for a in weekly_assets
    ]
    bid = launch_backfill(
        gql, {"partitionsByAssets": by_asset, "tags": [{"key": spike.STUDENT_TAG, "value": "none"}]}
    )
    done, secs, _, status = wait_backfill(instance, bid, args.backfill_timeout, sample_every=30)
    recs = backfill_runs(instance, bid)
    record(
        "4",
        f"3-week backfill ({len(days)} daily + 3x{len(weekly_assets)} weekly partitions): runs",
        len(recs),
    )
    record(
        "4",
        "  status / time",
        f"{status} / {fmt_s(secs)}{'' if done else ' (NOT FINISHED, capped)'}",
    )
    for r in sorted(recs, key=lambda r: r.create_timestamp.timestamp()):
        record("4", "  run", describe_run(r))
    if not done:
        cancel_backfill(gql, instance, bid)
    data, s = gql(PARTITION_STALE_QUERY, {"assetKey": {"path": student}, "partitionKey": probe})
    node = data["assetNodeOrError"]
    causes = "; ".join(f"{c['category']}: {c['reason']}" for c in node["staleCauses"][:2])
    record(
        "2",
        f"stale query for student {probe} after upstream mirt_item_params re-materialized: "
        f"{node['staleStatus']} {causes}",
        fmt_s(s),
    )

    # 4c. 1,000 non-contiguous user partitions, single_run ----------------------------------------
    k = min(args.noncontig, n // 2)
    step = n // k
    picked = [user_keys[i] for i in range(0, step * k, step)]
    print(
        f"\n== 4c. backfill {k:,} non-contiguous user partitions (every {step}th), single_run",
        flush=True,
    )
    t0 = time.monotonic()
    bid = launch_backfill(
        gql, {"assetSelection": [akey("student", "report_artifacts")], "partitionNames": picked}
    )
    record("4", f"  launchPartitionBackfill mutation ({k:,} keys)", fmt_s(time.monotonic() - t0))
    done, secs, samples, status = wait_backfill(instance, bid, args.backfill_timeout)
    recs = backfill_runs(instance, bid)
    ok = sum(r.dagster_run.status.value == "SUCCESS" for r in recs)
    record(
        "4",
        f"{k:,} non-contiguous partitions, single_run: runs created",
        f"{len(recs):,} ({ok:,} succeeded)",
    )
    record(
        "4",
        "  status / time",
        f"{status} / {fmt_s(secs)}"
        + ("" if done else f" (NOT FINISHED, capped at {args.backfill_timeout}s)"),
    )
    record(
        "4",
        "  (t s, runs created, succeeded) samples",
        " ".join(f"({a},{b},{c})" for a, b, c in samples[-6:]),
    )
    dur = run_durations(
        instance, [r.dagster_run.run_id for r in recs if r.dagster_run.status.value == "SUCCESS"]
    )
    if dur:
        record("4", "  median run start->end", fmt_s(sorted(dur)[len(dur) // 2]))
    if not done:
        cancel_backfill(gql, instance, bid)

    # 5. weekly x users multi-partitions ---------------------------------------------------
    print("\n== 5. MultiPartitionsDefinition(weekly x users)", flush=True)
    from dagster import partition_loading_context

    t0 = time.perf_counter()
    with partition_loading_context(dynamic_partitions_store=instance):
        count = spike.week_x_user.get_num_partitions()
    n_weeks = len(spike.weekly_52.get_partition_keys())
    record(
        "5",
        f"partition keys ({n_weeks} weeks x "
        f"{len(instance.get_dynamic_partitions('users')):,} users)",
        f"{count:,} (counted in {fmt_s(time.perf_counter() - t0)})",
    )
    multi_health(gql, args, "0 materialized", ("1st",))
    # one week x all users materialized (the weekly batch logging into the multi-partitioned asset)
    weekly_batch_run(
        instance, gql, home, spike, args, week, "all", "batched", target="multi", section="5"
    )
    multi_health(gql, args, "1 week x all users materialized", ("1st", "2nd"))

    # 4b: last, because at 100k it cannot finish in the spike's budget (the daemon is stopped
    # afterwards): backfill ALL user partitions of a per-user asset, single_run.
    print(f"\n== 4b. backfill all {n:,} user partitions, single_run", flush=True)
    t0 = time.monotonic()
    bid = launch_backfill(
        gql, {"assetSelection": [akey("student", "report_artifacts")], "allPartitions": True}
    )
    record("4", "  launchPartitionBackfill mutation (all partitions)", fmt_s(time.monotonic() - t0))
    done, secs, _, status = wait_backfill(instance, bid, args.big_backfill_timeout)
    recs = backfill_runs(instance, bid)
    planned = planned_events(db, [r.dagster_run.run_id for r in recs])
    record(
        "4",
        "  ASSET_MATERIALIZATION_PLANNED events written by then (one per partition)",
        f"{planned:,} in {fmt_s(secs)}",
    )
    dur = run_durations(instance, [r.dagster_run.run_id for r in recs])
    record("4", f"all-partitions backfill of student/report_artifacts ({n:,}+): runs", len(recs))
    record(
        "4",
        "  status / time",
        f"{status} / {fmt_s(secs)}{'' if done else ' (NOT FINISHED, capped)'}",
    )
    if recs:
        record("4", "  run(s)", "; ".join(describe_run(r) for r in recs[:3]))
        record("4", "  run start->end", ", ".join(fmt_s(d) for d in dur[:3]) or "?")
    if not done:
        # The daemon is busy creating the run (writing one planned event per partition) and
        # cannot be interrupted: stop it (nothing after this needs the daemon).
        stop(daemon, "daemon")
        record("4", "  (daemon stopped to end the capped backfill)", "")


def multi_health(gql: Gql, args, label: str, attempts) -> None:
    for attempt in attempts:
        try:
            s, _dims, st = health(gql, ["student", "weekly_ability"], timeout=args.multi_timeout)
            ranges = len(st.get("ranges", []))
            record(
                "5",
                f"student/weekly_ability health query, {label} ({attempt}; {ranges} week ranges)",
                fmt_s(s),
            )
        except requests.Timeout:
            record(
                "5",
                f"student/weekly_ability health query, {label} ({attempt})",
                f"TIMEOUT (> {args.multi_timeout:.0f} s)",
            )
            return


def week_after(week_key: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(week_key) + timedelta(days=7)).isoformat()


# --- main -----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--users", type=int, default=100_000, help="number of users partitions (default 100000)"
    )
    ap.add_argument("--chunk", type=int, default=10_000, help="add_dynamic_partitions chunk size")
    ap.add_argument("--burst", type=int, default=1000, help="students in the sensor burst")
    ap.add_argument(
        "--noncontig", type=int, default=1000, help="non-contiguous partitions to backfill"
    )
    ap.add_argument("--max-concurrent-runs", type=int, default=4)
    ap.add_argument("--run-timeout", type=float, default=900, help="cap per single run wait (s)")
    ap.add_argument("--backfill-timeout", type=float, default=300, help="cap per backfill wait (s)")
    ap.add_argument(
        "--big-backfill-timeout",
        type=float,
        default=180,
        help="cap for the all-partitions backfill (s)",
    )
    ap.add_argument(
        "--public-events",
        type=int,
        default=5000,
        help="students logged via context.log_event in one weekly run",
    )
    ap.add_argument(
        "--event-batch-size",
        type=int,
        default=1000,
        help="DAGSTER_EVENT_BATCH_SIZE for the servers/runs (0: unset)",
    )
    ap.add_argument(
        "--multi-timeout",
        type=float,
        default=120,
        help="GraphQL timeout for the multi-partitions query (s)",
    )
    ap.add_argument(
        "--sensor-settle", type=float, default=12, help="seconds to watch for extra sensor runs"
    )
    ap.add_argument("--keep", action="store_true", help="keep the database and DAGSTER_HOME")
    args = ap.parse_args()

    started = time.monotonic()
    db = f"dagster_spike_{os.getpid()}_{int(time.time())}"
    psql(f"create database {db}")  # first: an unreachable server leaves nothing behind
    home = Path(tempfile.mkdtemp(prefix="dagster_spike_"))
    workspace = write_home(home, db, args.max_concurrent_runs)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONWARNINGS": "ignore"}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    if args.event_batch_size > 0:
        env["DAGSTER_EVENT_BATCH_SIZE"] = str(args.event_batch_size)
    os.environ["DAGSTER_HOME"] = str(home)
    procs: list[tuple[str, subprocess.Popen]] = []
    instance = None
    print(f"DAGSTER_HOME={home}  database={db}", flush=True)
    try:
        import warnings

        warnings.filterwarnings("ignore")
        from dagster import DagsterInstance

        instance = DagsterInstance.get()  # creates the schema before the servers start
        spike = load_spike_defs()
        port = free_port()
        procs.append(
            (
                "webserver",
                start(
                    [
                        str(BIN / "dagster-webserver"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-w",
                        str(workspace),
                    ],
                    home / "webserver.log",
                    env,
                ),
            )
        )
        procs.append(
            (
                "daemon",
                start(
                    [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                    home / "daemon.log",
                    env,
                ),
            )
        )
        gql = Gql(port)

        def ready():
            try:
                data, _ = gql(WORKSPACE_QUERY, timeout=5)
            except (requests.RequestException, RuntimeError):
                return False
            entries = data["workspaceOrError"]["locationEntries"]
            return (
                bool(entries)
                and entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            )

        t0 = time.monotonic()
        if not wait_for(ready, 120, 1.0, "webserver + code location"):
            raise RuntimeError(f"webserver not ready; see {home / 'webserver.log'}")
        record("0", f"webserver ready on 127.0.0.1:{port}", fmt_s(time.monotonic() - t0))
        measure(args, instance, gql, home, spike, db, procs[1][1])
    finally:
        for name, proc in reversed(procs):
            stop(proc, name)
        time.sleep(2)
        for pid, cmd in leftover_pids(str(home)):
            print(f"  ! leftover process {pid} ({cmd}); SIGTERM", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if instance is not None:
            instance.dispose()
        if args.keep:
            print(f"kept DAGSTER_HOME={home} and database {db}")
        else:
            try:
                psql(f"drop database if exists {db} with (force)")
            except subprocess.CalledProcessError as e:
                print(f"  ! could not drop {db}: {e.stderr}")
            shutil.rmtree(home, ignore_errors=True)

    total = time.monotonic() - started
    print("\n| # | measurement | value |\n|---|---|---|")
    for section, what, value in ROWS:
        print(f"| {section} | {what} | {value} |")
    print(
        f"\nusers={args.users:,} chunk={args.chunk:,} "
        f"max_concurrent_runs={args.max_concurrent_runs}; total {total:.0f} s"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
