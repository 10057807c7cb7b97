"""Smoke test: the real dagster-webserver serves our code location's asset graph over GraphQL."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from seedtest_assets_tests.dagster_servers import free_port

ROOT = Path(__file__).resolve().parents[1]
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")

QUERY = """
{
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    partitionDefinition { type description }
    isPartitioned
  }
  schedulesOrError(repositorySelector: {repositoryName: "__repository__",
                                        repositoryLocationName: "seedtest_assets"}) {
    ... on Schedules { results { name cronSchedule executionTimezone } }
  }
}
"""


def graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.load(resp)
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.slow
def test_webserver_serves_the_asset_graph(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "SEEDTEST_HOME": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [str(WEBSERVER), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"webserver did not come up:\n{out[-3000:]}")
                time.sleep(0.5)
        data = graphql(port, QUERY)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert {"attempts", "features_topic_daily", "user_inactivity"} <= set(nodes)
    deps = {k: {"/".join(d["path"]) for d in n["dependencyKeys"]} for k, n in nodes.items()}
    assert deps["features_topic_daily"] == {"attempts", "features_topic_daily"}
    assert deps["user_inactivity"] == {"features_topic_daily"}
    assert nodes["features_topic_daily"]["isPartitioned"]
    assert nodes["features_topic_daily"]["partitionDefinition"]["type"] == "TIME_WINDOW"
    schedules = {s["name"]: s for s in data["schedulesOrError"]["results"]}
    assert schedules["features_topic_daily_schedule"]["cronSchedule"] == "15 1 * * *"
    assert schedules["user_inactivity_schedule"]["cronSchedule"] == "0 5 * * *"
