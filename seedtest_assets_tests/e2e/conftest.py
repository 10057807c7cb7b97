"""Shared fixtures for the end-to-end operator workflows (``test_runs.py``).

``ops_stack`` (module scope, not autouse) is what an operator has in production, in small: a
PostgreSQL warehouse holding a synthetic population (300 students x 6 weeks ending last week),
an instance database, and the real ``dagster-webserver`` + ``dagster-daemon`` running the
production ``deploy/dagster.yaml`` (queue, ``run_retries``, ``run_monitoring``; only the dequeue
interval shortened). Tests act only through the GraphQL API the UI uses: the mutations, and the
query the "Materialize" button sends first, are the UI's own (dagster-webserver 1.13.27 bundle:
ConfigFetch.tsx, RunUtils.tsx, BackfillUtils.tsx); the other queries read the fields the UI
shows. The warehouse is checked with SQL that does not go through our pipeline code.

The helpers that touch processes only ever signal pids taken from the run's own event log
that also carry this stack's ``DAGSTER_HOME`` in their environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.dagster_servers import (
    LOCATION,
    DagsterServers,
    carries_marker,
    dagster_servers,
    wait_for,
)

USERS = 300
WEEKS = 6
SEED = 11
REPOSITORY = "__repository__"
#: The hidden job the UI launches asset materializations through.
ASSET_JOB = "__ASSET_JOB"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

# --------------------------------------------------------------------------- GraphQL (the UI's)
# ConfigFetch.tsx: what the "Materialize" button asks before launching one partition.
CONFIG_PARTITION_FOR_ASSET_JOB = """
query ConfigPartitionForAssetJobQuery($repositoryName: String!, $repositoryLocationName: String!,
    $jobName: String!, $partitionName: String!, $assetKeys: [AssetKeyInput!]!) {
  pipelineOrError(params: {pipelineName: $jobName, repositoryName: $repositoryName,
                           repositoryLocationName: $repositoryLocationName}) {
    __typename
    ... on Pipeline {
      partition(partitionName: $partitionName, selectedAssetKeys: $assetKeys) {
        name
        runConfigOrError { __typename ... on PartitionRunConfig { yaml }
                           ... on PythonError { message } }
        tagsOrError { __typename ... on PartitionTags { results { key value } }
                      ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}"""

ASSET_CHECKS = """
query AssetChecks($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name jobNames } } }
  }
}"""

# RunUtils.tsx: the mutation behind "Materialize" / "Launch run".
LAUNCH_PIPELINE_EXECUTION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id runId pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}"""

# BackfillUtils.tsx: the mutation behind "Launch backfill".
LAUNCH_PARTITION_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message stack }
  }
}"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status numCancelable error { message }
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
    }
    ... on PythonError { message }
  }
}"""

RUN_FIELDS = "runId status tags { key value } assetSelection { path } startTime endTime"

RUN = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {RUN_FIELDS} }}
    ... on RunNotFoundError {{ message }}
    ... on PythonError {{ message }}
  }}
}}"""

RUNS = f"""
query Runs($filter: RunsFilter) {{
  runsOrError(filter: $filter) {{
    __typename
    ... on Runs {{ results {{ {RUN_FIELDS} }} }}
    ... on PythonError {{ message }}
  }}
}}"""

# RunUtils.tsx / TerminationDialog: "Terminate" ("Force termination" = MARK_AS_CANCELED_...).
TERMINATE_RUNS = """
mutation Terminate($runIds: [String!]!, $terminatePolicy: TerminateRunPolicy) {
  terminateRuns(runIds: $runIds, terminatePolicy: $terminatePolicy) {
    __typename
    ... on TerminateRunsResult {
      terminateRunResults {
        __typename
        ... on TerminateRunSuccess { run { runId status } }
        ... on TerminateRunFailure { message }
        ... on RunNotFoundError { message }
        ... on PythonError { message }
      }
    }
    ... on PythonError { message }
  }
}"""

MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
          ... on TextMetadataEntry { text }
        }
      }
    }
  }
}"""

CHECK_EXECUTIONS = """
query CheckExecutions($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 20) { runId status partition }
}"""


def _with_op_config(run_config_yaml: str, asset: str, config: dict | None) -> str:
    """The partition's run config, plus ``config`` for the asset's op (what a person types in
    the launchpad's config editor before clicking Materialize)."""
    if not config:
        return run_config_yaml
    import yaml

    data = yaml.safe_load(run_config_yaml) or {}
    op = asset.replace("/", "__")
    data.setdefault("ops", {}).setdefault(op, {})["config"] = config
    return yaml.safe_dump(data)


def akey(name: str) -> dict:
    return {"path": name.split("/")}


def tag(run: dict, key: str) -> str | None:
    """One tag of a run as returned by :data:`RUN_FIELDS`."""
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


@dataclass
class OpsStack:
    """Warehouse + instance + servers, and the operator's actions on them via GraphQL."""

    servers: DagsterServers
    warehouse_url: str
    engine: Engine
    home: Path
    #: First Monday of the synthetic data and the Monday of the current (incomplete) week.
    start: date
    this_monday: date

    # ----------------------------------------------------------------- calendar
    def week(self, i: int) -> date:
        """Monday of data week ``i`` (0 = the first; ``WEEKS - 1`` = last complete week)."""
        return self.start + timedelta(weeks=i)

    def complete_weeks(self, n: int) -> list[date]:
        """The last ``n`` complete weeks, oldest first."""
        return [self.this_monday - timedelta(weeks=k) for k in range(n, 0, -1)]

    # ----------------------------------------------------------------- GraphQL
    def gql(self, query: str, variables: dict | None = None) -> dict:
        return self.servers.graphql(query, variables, timeout=120)

    def materialize(self, asset: str, partition: str, op_config: dict | None = None) -> str:
        """Click "Materialize" on one partition of one asset, as the UI does; returns run id.

        Same requests as the UI: the partition's tags and run config from the hidden asset
        job, then ``launchPipelineExecution`` with the asset and its checks selected.
        """
        config = self.gql(
            CONFIG_PARTITION_FOR_ASSET_JOB,
            {
                "repositoryName": REPOSITORY,
                "repositoryLocationName": LOCATION,
                "jobName": ASSET_JOB,
                "partitionName": partition,
                "assetKeys": [akey(asset)],
            },
        )["pipelineOrError"]
        assert config["__typename"] == "Pipeline", config
        part = config["partition"]
        assert part["tagsOrError"]["__typename"] == "PartitionTags", part
        assert part["runConfigOrError"]["__typename"] == "PartitionRunConfig", part
        nodes = self.gql(ASSET_CHECKS, {"keys": [akey(asset)]})["assetNodes"]
        checks = [
            {"assetKey": akey(asset), "name": c["name"]}
            for n in nodes
            if n["assetChecksOrError"]["__typename"] == "AssetChecks"
            for c in n["assetChecksOrError"]["checks"]
            if not c["jobNames"] or ASSET_JOB in c["jobNames"]
        ]
        params = {
            "mode": "default",
            "executionMetadata": {
                "tags": [
                    {"key": t["key"], "value": t["value"]} for t in part["tagsOrError"]["results"]
                ]
            },
            "runConfigData": _with_op_config(
                part["runConfigOrError"]["yaml"] or "{}", asset, op_config
            ),
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": ASSET_JOB,
                "assetSelection": [akey(asset)],
                "assetCheckSelection": checks,
            },
        }
        res = self.gql(LAUNCH_PIPELINE_EXECUTION, {"executionParams": params})
        res = res["launchPipelineExecution"]
        assert res["__typename"] == "LaunchRunSuccess", res
        return res["run"]["runId"]

    def run(self, run_id: str) -> dict:
        res = self.gql(RUN, {"runId": run_id})["runOrError"]
        assert res["__typename"] == "Run", res
        return res

    def wait_run(self, run_id: str, timeout: float = 120, statuses=TERMINAL) -> dict:
        """Poll the run through GraphQL until its status is in ``statuses``."""
        run = wait_for(lambda: (r := self.run(run_id))["status"] in statuses and r, timeout, 0.5)
        assert run, f"run {run_id} not in {statuses} after {timeout} s: {self.run(run_id)}\n" + (
            self.servers.log_tail("daemon")
        )
        return run

    def runs(self, tags: dict[str, str]) -> list[dict]:
        """Runs carrying all these tags (``{"dagster/backfill": id}`` etc.), newest first."""
        flt = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        res = self.gql(RUNS, {"filter": flt})["runsOrError"]
        assert res["__typename"] == "Runs", res
        return res["results"]

    def runs_for_partition(self, asset: str, partition: str) -> list[dict]:
        """Every run that targeted ``asset``'s ``partition`` alone (UI launches + retries)."""
        return [
            r
            for r in self.runs({"dagster/partition": partition})
            if [a["path"] for a in r["assetSelection"] or []] == [asset.split("/")]
        ]

    def launch_backfill(self, params: dict) -> str:
        res = self.gql(LAUNCH_PARTITION_BACKFILL, {"backfillParams": params})
        res = res["launchPartitionBackfill"]
        assert res["__typename"] == "LaunchBackfillSuccess", res
        return res["backfillId"]

    def backfill(self, backfill_id: str) -> dict:
        res = self.gql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert res["__typename"] == "PartitionBackfill", res
        return res

    def wait_backfill(self, backfill_id: str, timeout: float) -> dict:
        done = wait_for(
            lambda: (b := self.backfill(backfill_id))["status"] in BACKFILL_TERMINAL and b,
            timeout,
            1.0,
        )
        assert done, (
            f"backfill {backfill_id} not finished in {timeout} s: "
            + str(self.backfill(backfill_id))
            + "\n"
            + self.servers.log_tail("daemon")
        )
        return done

    def terminate(self, run_ids: list[str], policy: str) -> list[dict]:
        res = self.gql(TERMINATE_RUNS, {"runIds": run_ids, "terminatePolicy": policy})
        res = res["terminateRuns"]
        assert res["__typename"] == "TerminateRunsResult", res
        return res["terminateRunResults"]

    def materializations(self, asset: str, partitions: list[str]) -> list[dict]:
        res = self.gql(MATERIALIZATIONS, {"key": akey(asset), "partitions": partitions})
        return res["assetOrError"]["assetMaterializations"]

    def check_executions(self, asset: str, check: str) -> list[dict]:
        return self.gql(CHECK_EXECUTIONS, {"key": akey(asset), "check": check})[
            "assetCheckExecutions"
        ]

    # ----------------------------------------------------------------- processes
    def run_worker_pids(self, run_id: str) -> tuple[int, list[int]]:
        """(run worker pid, step process pids) of a run in progress, verified in /proc.

        The pids come from the run's own event log (``RUN_START`` is written by the run
        worker, ``STEP_START`` by each step process). The run id itself is on no command line
        of these processes: they are ``multiprocessing`` spawn children of the code server
        (only their compute-log ``tail`` helpers name it). Each pid must carry this stack's
        ``DAGSTER_HOME`` and the steps must be the worker's children, or nothing is returned
        to signal.
        """
        import dagster as dg

        instance = dg.DagsterInstance.from_config(str(self.home))
        try:
            records = instance.all_logs(
                run_id, of_type={dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START}
            )
        finally:
            instance.dispose()
        worker = [
            r.dagster_event.pid
            for r in records
            if r.dagster_event.event_type == dg.DagsterEventType.RUN_START
        ]
        steps = [
            r.dagster_event.pid
            for r in records
            if r.dagster_event.event_type == dg.DagsterEventType.STEP_START
        ]
        assert len(worker) == 1 and steps, f"run {run_id}: worker {worker}, steps {steps}"
        for pid in [*worker, *steps]:
            assert carries_marker(pid, str(self.home)), f"pid {pid} is not one of ours"
        for pid in steps:
            assert _ppid(pid) == worker[0], f"step pid {pid} is not a child of {worker[0]}"
        return worker[0], steps

    def kill_run_processes(self, run_id: str, which: str = "both") -> tuple[list[int], list[int]]:
        """SIGKILL a run's processes: ``both`` its worker and its steps at once (a lost pod or
        node), ``worker`` the run worker alone, ``step`` the step processes alone (an OOM
        kill). Returns (the pids signalled, every pid of the run)."""
        worker, steps = self.run_worker_pids(run_id)
        targets = {"both": [worker, *steps], "worker": [worker], "step": steps}[which]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return targets, [worker, *steps]

    # ----------------------------------------------------------------- warehouse
    def scalar(self, sql: str, **params) -> object:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def waiting_on_lock(self, statement: str) -> list[int]:
        """Backends of the warehouse waiting on a lock inside a statement starting with
        ``statement`` (e.g. ``DELETE FROM features_topic_daily``: a partition replace held
        mid-transaction)."""
        return [
            int(pid)
            for (pid,) in self.rows(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE :q",
                q=f"{statement} %",
            )
        ]

    def backend_alive(self, pid: int) -> bool:
        return bool(self.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = :p", p=pid))


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory) -> Iterator[OpsStack]:
    """A warehouse with 300 students x 6 weeks ending last week, an instance database, and the
    real webserver + daemon on ``deploy/dagster.yaml``; everything dropped/stopped after."""
    _require_postgres()  # skips locally without PostgreSQL, fails under CI=true
    tmp = tmp_path_factory.mktemp("e2e_runs")
    warehouse_url = create_postgres_database("seedtest_e2e_runs_wh")
    instance_url = create_postgres_database("seedtest_e2e_runs_dagster")
    engine = make_engine(warehouse_url)
    try:
        upgrade(warehouse_url)
        # The calendar is read once, here, and every test takes its weeks from it. Only
        # complete weeks are ever targeted, and they stay complete if Monday 00:00 UTC passes
        # during the module, so the servers keep the real clock: freezing it
        # (SEEDTEST_FROZEN_NOW) would stop computed_at from advancing between two writes of a
        # day, which the kill/terminate tests compare.
        today = utc_now().date()
        this_monday = today - timedelta(days=today.weekday())
        start = this_monday - timedelta(weeks=WEEKS)
        load(engine, generate(SyntheticConfig(n_users=USERS, weeks=WEEKS, seed=SEED, start=start)))
        env = {"DATABASE_URL": warehouse_url, "SEEDTEST_HOME": str(tmp)}
        t0 = time.monotonic()
        with dagster_servers(tmp / "dagster_home", instance_url, env) as servers:
            print(f"servers ready in {time.monotonic() - t0:.1f} s")
            yield OpsStack(servers, warehouse_url, engine, servers.home, start, this_monday)
    finally:
        engine.dispose()
        drop_postgres_database(warehouse_url)
        drop_postgres_database(instance_url)


def day_bounds(day: date) -> dict[str, datetime]:
    lo = datetime.combine(day, datetime.min.time())
    return {"lo": lo, "hi": lo + timedelta(days=1)}
