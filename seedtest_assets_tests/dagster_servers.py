"""The real ``dagster-webserver`` and ``dagster-daemon`` on PostgreSQL instance storage.

Used by the end-to-end sensor test and by ``benchmarks/online.py`` (the same approach as
``benchmarks/partition_spike.py``): a throw-away ``DAGSTER_HOME`` whose ``dagster.yaml`` points
at a database of its own, our code location from ``workspace.yaml``, both servers in their own
process sessions so that stopping them also stops the code servers and run workers they
spawned. Only processes started here are ever signalled, by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "seedtest_assets"

SENSOR_STATE = """
query Sensor($s: SensorSelector!) {
  sensorOrError(sensorSelector: $s) {
    __typename
    ... on Sensor {
      sensorState {
        status
        ticks(limit: 50) {
          status cursor timestamp endTimestamp runIds runKeys skipReason error { message }
        }
      }
    }
    ... on PythonError { message }
  }
}"""

START_SENSOR = """
mutation Start($s: SensorSelector!) {
  startSensor(sensorSelector: $s) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""

WORKSPACE = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

STUDENT_MATERIALIZATION = """
query Student($key: AssetKeyInput!, $partition: String!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) {
        runId partition timestamp
        metadataEntries {
          label
          ... on FloatMetadataEntry { floatValue }
          ... on TextMetadataEntry { text }
        }
      }
    }
  }
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PRODUCTION_YAML = ROOT / "deploy" / "dagster.yaml"


def pg_env(instance_url: str) -> dict[str, str]:
    """The ``DAGSTER_PG_*`` variables that ``deploy/dagster.yaml`` reads, for ``instance_url``."""
    url = make_url(instance_url)
    return {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": url.database or "",
    }


def dagster_yaml(instance_url: str, dequeue_interval: int = 1) -> str:
    """The production instance file (``deploy/dagster.yaml``) with its ``{env: DAGSTER_PG_*}``
    sources filled in for ``instance_url``, so that in-process instances (which do not see the
    servers' environment) load the very same settings; only the dequeue interval is shortened
    so that tests do not wait 5 s per queued run."""
    text = PRODUCTION_YAML.read_text()
    for name, value in pg_env(instance_url).items():
        literal = value if name == "DAGSTER_PG_PORT" else json.dumps(value)  # IntSource
        text = text.replace(f"{{env: {name}}}", literal)
    return text.replace(
        "dequeue_interval_seconds: 5", f"dequeue_interval_seconds: {dequeue_interval}"
    )


def sensor_selector(name: str) -> dict:
    return {
        "repositoryName": "__repository__",
        "repositoryLocationName": LOCATION,
        "sensorName": name,
    }


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.5):
    """Poll until ``predicate()`` is truthy (returned) or ``timeout`` s pass (``None``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


@dataclass
class DagsterServers:
    """A running webserver + daemon; use :func:`dagster_servers` to start and stop them."""

    home: Path
    port: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: How each server was started (command, environment), for :meth:`restart`.
    commands: dict[str, list[str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.load(resp)
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {json.dumps(body['errors'])[:2000]}")
        return body["data"]

    def ready(self) -> bool:
        try:
            data = self.graphql(WORKSPACE, timeout=5)
        except (OSError, RuntimeError, urllib.error.URLError):
            return False
        entries = data["workspaceOrError"].get("locationEntries") or []
        loaded = [e["locationOrLoadError"] or {} for e in entries]
        for entry in loaded:
            if entry.get("__typename") == "PythonError":  # fail fast: it will not recover
                raise RuntimeError(f"code location failed to load: {entry.get('message')}")
        return bool(loaded) and all(e.get("__typename") == "RepositoryLocation" for e in loaded)

    def start_sensor(self, name: str) -> str:
        """Turn a sensor on, as an operator does in the UI; returns its status."""
        data = self.graphql(START_SENSOR, {"s": sensor_selector(name)})["startSensor"]
        if data["__typename"] != "Sensor":
            raise RuntimeError(f"startSensor failed: {data}")
        return data["sensorState"]["status"]

    def ticks(self, name: str) -> list[dict]:
        """The sensor's recent ticks, newest first."""
        data = self.graphql(SENSOR_STATE, {"s": sensor_selector(name)})["sensorOrError"]
        if data["__typename"] != "Sensor":
            raise RuntimeError(f"sensorOrError: {data}")
        return data["sensorState"]["ticks"]

    def latest_student_event(self, asset_path: list[str], partition: str) -> dict | None:
        """What the UI shows for one student: the partition's latest materialization."""
        data = self.graphql(
            STUDENT_MATERIALIZATION, {"key": {"path": asset_path}, "partition": partition}
        )
        mats = data["assetOrError"].get("assetMaterializations") or []
        if not mats:
            return None
        m = mats[0]
        meta = {e["label"]: e.get("floatValue", e.get("text")) for e in m["metadataEntries"]}
        return {"runId": m["runId"], "partition": m["partition"], "metadata": meta}

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def kill(self, name: str) -> int:
        """SIGKILL one server process (``"daemon"`` or ``"webserver"``) and only it, as a
        crash would: the code server and run workers it spawned live on. Returns its pid."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        return proc.pid

    def restart(self, name: str) -> subprocess.Popen:
        """Start a server again with the command and environment it first had (after
        :meth:`kill`, or after it exited); its log is appended to. Stopped on exit as before."""
        if self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is still running (pid {self.procs[name].pid})")
        self.procs[name] = _start(self.commands[name], self.home / f"{name}.log", self.env, "a")
        return self.procs[name]


def _start(cmd: list[str], log: Path, env: dict, mode: str = "w") -> subprocess.Popen:
    fh = open(log, mode)  # noqa: SIM115 - handed to the child, closed when it exits
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its children
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def carries_marker(pid: int, marker: str) -> bool:
    """Whether process ``pid`` has ``marker`` (our DAGSTER_HOME) in its environment."""
    try:
        return marker.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _leftovers(marker: str) -> list[int]:
    """Pids of processes carrying our DAGSTER_HOME in their environment (our descendants)."""
    me = os.getpid()
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and int(p.name) != me and carries_marker(int(p.name), marker)
    ]


@contextlib.contextmanager
def dagster_servers(
    home: Path, instance_url: str, env: dict[str, str], ready_timeout: float = 90
) -> Iterator[DagsterServers]:
    """Start webserver + daemon with ``DAGSTER_HOME=home`` on ``instance_url``; stop both after.

    ``env`` is added to this process's environment for both servers (and so for their code
    servers and run workers).
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(dagster_yaml(instance_url))
    full_env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONWARNINGS": "ignore", **env}
    servers = DagsterServers(home=home, port=free_port(), env=full_env)
    workspace = str(ROOT / "workspace.yaml")
    servers.commands = {
        "webserver": [
            str(BIN / "dagster-webserver"),
            "-w",
            workspace,
            "-h",
            "127.0.0.1",
            "-p",
            str(servers.port),
        ],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", workspace],
    }
    try:
        servers.procs["webserver"] = _start(
            servers.commands["webserver"], home / "webserver.log", full_env
        )
        servers.procs["daemon"] = _start(servers.commands["daemon"], home / "daemon.log", full_env)
        if not wait_for(servers.ready, ready_timeout, 1.0):
            raise RuntimeError(
                f"webserver not ready in {ready_timeout:.0f} s:\n{servers.log_tail('webserver')}"
            )
        yield servers
    finally:
        for proc in reversed(list(servers.procs.values())):
            _stop(proc)
        for pid in _leftovers(str(home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
