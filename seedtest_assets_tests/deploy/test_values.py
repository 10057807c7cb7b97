"""deploy/helm/values.yaml: pinned chart, secrets by name only, private webserver, env the code
reads, and the k8s executor route. Plus a scan of all of deploy/ for written-down secrets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seedtest_assets_tests.deploy import chart, secrets_scan
from seedtest_assets_tests.deploy.conftest import CODE_LOCATION, DEPLOY, ROOT, VALUES


def test_chart_version_is_pinned_to_the_installed_dagster(values) -> None:
    import dagster

    version = dagster.__version__
    assert version == chart.CHART_VERSION
    text = VALUES.read_text()
    assert re.search(rf"^# chart: dagster/dagster {re.escape(version)}\b", text, re.M)
    assert f"--version {version}" in text
    readme = (DEPLOY / "README.md").read_text()
    pins = set(re.findall(r"dagster/dagster[^\n]*?--version (\S+)", readme.replace("\\\n", " ")))
    assert pins == {version}, pins
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert values[component]["image"]["tag"] == version, component


def test_secrets_are_referenced_by_name_only(values) -> None:
    deployment = chart.user_deployment(values, CODE_LOCATION)
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    wanted = [{"name": "seedtest-db-credentials"}, {"name": "aws-s3-credentials"}]
    assert deployment["envSecrets"] == wanted
    assert launcher["envSecrets"] == wanted
    assert values["global"]["postgresqlSecretName"] == "seedtest-dagster-postgresql"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlPassword"] == ""
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    # no credential-bearing variable is set in plain env
    env = deployment["env"]
    assert not {"DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def test_webserver_is_private(values) -> None:
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert values["ingress"]["enabled"] is False
    text = VALUES.read_text()
    assert "LoadBalancer" not in text and "NodePort" not in text


def test_code_server_env_is_what_the_code_reads(values) -> None:
    """Env values are strings (they become a ConfigMap) and valid for the code reading them."""
    from seedtest_assets.definitions import EXECUTORS
    from seedtest_assets.defs.automation.schedules import report_shards

    env = chart.user_deployment(values, CODE_LOCATION)["env"]
    assert all(isinstance(v, str) for v in env.values()), env
    assert env["SEEDTEST_EXECUTOR"] in EXECUTORS
    assert report_shards(env) == int(env["SEEDTEST_REPORT_SHARDS"]) > 1
    assert env["S3_BUCKET"] and env["AWS_REGION"]


def test_heavy_work_has_room_to_fan_out(values) -> None:
    """Shards run in parallel up to the queue's heavy limit, which leaves room for the rest."""
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    limits = {(t["key"], t.get("value")): t["limit"] for t in queue["tagConcurrencyLimits"]}
    heavy = limits[("seedtest/workload", "heavy")]
    assert 1 < heavy < queue["maxConcurrentRuns"]
    shards = int(chart.user_deployment(values, CODE_LOCATION)["env"]["SEEDTEST_REPORT_SHARDS"])
    assert shards >= heavy


def _deploy_files() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    return [*files, ROOT / ".dockerignore"]


def test_no_secret_values_anywhere_in_deploy() -> None:
    findings = secrets_scan.scan_paths(_deploy_files(), ROOT)
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize(
    "text,suffix",
    [
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n", ".sh"),
        ("aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", ".yaml"),
        ("postgresql:\n  postgresqlPassword: hunter2\n", ".yaml"),
        ("env:\n  - name: DAGSTER_PG_PASSWORD\n    value: hunter2\n", ".yaml"),
        ("kind: Secret\napiVersion: v1\nmetadata: {name: x}\nstringData: {a: b}\n", ".yaml"),
        ("export DATABASE_URL=postgresql://app:hunter2@db:5432/seedtest\n", ".md"),
        ("kubectl create secret generic x --from-literal=DATABASE_URL=postgres://a:b@c/d\n", ".md"),
        ("    - --cookie-secret=0123456789abcdef0123456789abcdef\n", ".yaml"),
    ],
)
def test_secret_scan_catches_planted_secrets(tmp_path, text: str, suffix: str) -> None:
    """The scan can fail: each planted credential is found."""
    path = tmp_path / f"planted{suffix}"
    path.write_text(text)
    assert secrets_scan.scan_paths([path], tmp_path)


def test_secret_scan_allows_references_and_placeholders(tmp_path) -> None:
    path = tmp_path / "ok.md"
    path.write_text(
        '--from-literal=DATABASE_URL="$DATABASE_URL"\n'
        "postgresql://seedtest:<password>@db.internal:5432/seedtest\n"
        "password: {env: DAGSTER_PG_PASSWORD}\n"
    )
    assert secrets_scan.scan_text(path.read_text()) == []


@pytest.mark.slow
def test_k8s_executor_route_loads_and_validates(values) -> None:
    """SEEDTEST_EXECUTOR=k8s: the code location loads with k8s_job_executor on every job, and
    the executor's config (as documented in deploy/README.md) validates. In a subprocess, so
    this import does not leak into the rest of the session."""
    script = r"""
import json
from dagster._config import process_config
from seedtest_assets.definitions import build_defs

defs = build_defs()
jobs = defs.get_repository_def().get_all_jobs()
names = {j.name: j.executor_def.name for j in jobs}
executor = jobs[0].executor_def
config = {"max_concurrent": 4, "step_k8s_config": {"pod_spec_config": {"node_selector": {}}}}
ok = process_config(executor.config_schema.config_type, config).success
bad = process_config(executor.config_schema.config_type, {"max_concurent": 4}).success
print(json.dumps({"executors": names, "ok": ok, "bad": bad}))
"""
    env = {**os.environ, "SEEDTEST_EXECUTOR": "k8s"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["executors"].values()) == {"k8s"}, report["executors"]
    assert report["ok"] is True and report["bad"] is False
    assert chart.user_deployment(values, CODE_LOCATION)["env"]["SEEDTEST_EXECUTOR"] in (
        "multiprocess",
        "k8s",
    )
