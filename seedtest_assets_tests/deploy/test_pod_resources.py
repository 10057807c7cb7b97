"""Pod sizes per asset and per job, as the Kubernetes Jobs dagster-k8s actually creates.

Two routes use the ``dagster-k8s/config`` tags of seedtest_assets/core/workloads.py:

- job tags size the *run* pod that K8sRunLauncher starts (every run; default executor);
- asset op tags size the *step* pods of ``k8s_job_executor`` (``SEEDTEST_EXECUTOR=k8s``).

Both are built here with dagster-k8s's own code (the run pods through the real launcher of the
chart's rendered instance) and each resulting Job must pass the Kubernetes schema.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from seedtest_assets_tests.deploy import chart
from seedtest_assets_tests.deploy.conftest import (
    CODE_LOCATION,
    NAMESPACE,
    RELEASE,
    VENV_PYTHON,
    k8s_validate,
)

K8S_TAG = "dagster-k8s/config"
IRT_ASSETS = {"mirt_item_params", "mirt_ability", "topic_ability", "item_quality"}
REPORT_ASSETS = {"report_artifacts", "student/report_artifacts"}
BATCH_ASSETS = {"features_topic_daily", "user_inactivity", "weekly_kpi"}
IMPLICIT_ASSET_JOB = "__ASSET_JOB"


@pytest.fixture(scope="module")
def repo():
    from seedtest_assets.definitions import build_defs

    defs = build_defs()

    return defs.get_repository_def()


def _memory(resources: dict[str, Any], side: str) -> float:
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(resources[side]["memory"]))


def _cpu(resources: dict[str, Any], side: str) -> float:
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(resources[side]["cpu"]))


def _asset_pods(repo) -> dict[str, Any]:
    """asset name -> its op's UserDefinedDagsterK8sConfig."""
    from dagster_k8s.job import UserDefinedDagsterK8sConfig

    pods = {}
    for key, assets_def in repo.assets_defs_by_key.items():
        if not assets_def.is_executable:
            continue
        tags = assets_def.op.tags
        assert K8S_TAG in tags, f"{key.to_user_string()} has no pod size"
        tag = tags[K8S_TAG]
        pods[key.to_user_string()] = UserDefinedDagsterK8sConfig.from_dict(
            json.loads(tag) if isinstance(tag, str) else tag
        )
    return pods


def _sanitized(job) -> dict[str, Any]:
    import kubernetes

    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


def test_every_asset_and_job_tag_parses(repo) -> None:
    from dagster_k8s.job import get_user_defined_k8s_config

    pods = _asset_pods(repo)
    assert set(pods) >= IRT_ASSETS | REPORT_ASSETS | BATCH_ASSETS
    for name, pod in pods.items():
        resources = pod.container_config["resources"]
        for quantity in (_memory, _cpu):
            assert quantity(resources, "requests") <= quantity(resources, "limits"), name
    for job in repo.get_all_jobs():
        if job.name == IMPLICIT_ASSET_JOB:
            continue
        assert isinstance(job.tags[K8S_TAG], str), "run tags are JSON strings"
        config = get_user_defined_k8s_config(job.tags)
        assert config.container_config["resources"]["requests"]["memory"], job.name


def test_irt_and_reports_get_more_memory_than_batch(repo) -> None:
    pods = _asset_pods(repo)

    def mem(name: str, side: str) -> float:
        return _memory(pods[name].container_config["resources"], side)

    batch = max(mem(n, "requests") for n in BATCH_ASSETS)
    batch_limit = max(mem(n, "limits") for n in BATCH_ASSETS)
    for name in IRT_ASSETS | REPORT_ASSETS:
        assert mem(name, "requests") > batch, name
        assert mem(name, "limits") > batch_limit, name
    # the original batch's 4-8Gi fits inside the IRT pod
    assert min(mem(n, "limits") for n in IRT_ASSETS) >= 8 * 2**30


def _job_config(values):
    """A DagsterK8sJobConfig as the run/step launchers build it from our values."""
    from dagster_k8s.job import DagsterK8sJobConfig

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    deployment = chart.user_deployment(values, CODE_LOCATION)
    return DagsterK8sJobConfig(
        job_image=chart.user_deployment_image(values, CODE_LOCATION),
        dagster_home=values["global"]["dagsterHome"],
        image_pull_policy=deployment["image"]["pullPolicy"],
        service_account_name=f"{RELEASE}-dagster-user-deployments-user-deployments",
        instance_config_map=f"{RELEASE}-dagster-instance",
        postgres_password_secret=values["global"]["postgresqlSecretName"],
        env_config_maps=[f"{RELEASE}-dagster-user-deployments-{CODE_LOCATION}-user-env"],
        env_secrets=[s["name"] for s in launcher["envSecrets"]],
    )


def test_step_pods_of_k8s_job_executor_are_valid_jobs(repo, values) -> None:
    """SEEDTEST_EXECUTOR=k8s: one Job per step, sized by the asset's op tag."""
    from dagster_k8s.job import construct_dagster_k8s_job, get_k8s_job_name

    job_config = _job_config(values)
    for name, pod in _asset_pods(repo).items():
        job = construct_dagster_k8s_job(
            job_config=job_config,
            args=["dagster", "api", "execute_step", "{}"],
            job_name=get_k8s_job_name("run-id", name),
            user_defined_k8s_config=pod,
            component="step_worker",
            labels={"dagster/op": name.replace("/", "__")},
        )
        manifest = _sanitized(job)
        k8s_validate(manifest)
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"] == pod.container_config["resources"], name
        assert {"secretRef": {"name": "seedtest-db-credentials"}} in container["envFrom"]


def _launch(
    instance,
    values,
    monkeypatch,
    job_name: str,
    tags: dict[str, str],
    run_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Launch a run through the chart instance's K8sRunLauncher; return the Job it submits."""
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.launcher import LaunchRunContext
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.utils import make_new_run_id

    launcher = instance.run_launcher
    submitted: list[tuple[Any, str]] = []
    monkeypatch.setattr(
        launcher._api_client,
        "create_namespaced_job_with_retries",
        lambda body, namespace, **_: submitted.append((body, namespace)),
    )
    origin = JobPythonOrigin(
        job_name,
        RepositoryPythonOrigin(
            executable_path=VENV_PYTHON,
            code_pointer=ModuleCodePointer("seedtest_assets.definitions", "defs", None),
            container_image=chart.user_deployment_image(values, CODE_LOCATION),
            # What the chart hands the code server, and the code server hands every run.
            container_context=chart.user_code_container_context(
                values, CODE_LOCATION, release=RELEASE, namespace=NAMESPACE
            ),
        ),
    )
    run = DagsterRun(
        job_name=job_name,
        run_id=make_new_run_id(),
        run_config=run_config or {},
        tags=tags,
        job_code_origin=origin,
    )
    instance.add_run(run)
    launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    ((job, namespace),) = submitted
    assert namespace == NAMESPACE
    return _sanitized(job)


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.postgres
def test_run_pods_from_the_chart_instance(chart_instance, values, repo, monkeypatch) -> None:
    """Every job's run pod, as the rendered instance's launcher submits it: valid, sized by the
    job's tag (untagged runs: the default), with the secrets, image and instance config."""
    from dagster_k8s.job import get_user_defined_k8s_config

    instance, _ = chart_instance
    default = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    default_resources = default["containerConfig"]["resources"]
    deployment = chart.user_deployment(values, CODE_LOCATION)
    # The chart forwards the code server's resources to runs; they must be the same default.
    assert deployment["resources"] == default_resources

    for job in repo.get_all_jobs():
        manifest = _launch(instance, values, monkeypatch, job.name, dict(job.tags))
        k8s_validate(manifest)
        container = _container(manifest)
        pod = manifest["spec"]["template"]["spec"]
        if job.name == IMPLICIT_ASSET_JOB:
            assert container["resources"] == default_resources
        else:
            expected = get_user_defined_k8s_config(job.tags).container_config["resources"]
            assert container["resources"] == expected, job.name
        assert container["image"] == chart.user_deployment_image(values, CODE_LOCATION)
        # The code server reports its own interpreter: the image's venv (deploy/Dockerfile).
        assert container["args"][:5] == [VENV_PYTHON, "-m", "dagster", "api", "execute_run"]
        assert "command" not in container, "the image's ENTRYPOINT (tini) stays"
        env_from = {
            (kind, ref["name"]) for item in container["envFrom"] for kind, ref in item.items()
        }
        assert {
            ("secretRef", "seedtest-db-credentials"),
            ("secretRef", "aws-s3-credentials"),
            ("configMapRef", f"{RELEASE}-dagster-user-deployments-{CODE_LOCATION}-user-env"),
        } <= env_from
        env = {e["name"]: e for e in container["env"]}
        assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": values["global"]["postgresqlSecretName"],
            "key": chart.POSTGRES_PASSWORD_KEY,
        }
        assert env["DAGSTER_HOME"]["value"] == values["global"]["dagsterHome"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert manifest["spec"]["ttlSecondsAfterFinished"] == 86400
        annotations = manifest["spec"]["template"]["metadata"]["annotations"]
        assert annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"


@pytest.mark.postgres
def test_report_batch_fans_out_into_one_pod_per_shard(
    chart_instance, values, repo, monkeypatch
) -> None:
    """With the values' SEEDTEST_REPORT_SHARDS, the Monday schedule asks for that many runs;
    each becomes its own report-sized pod."""
    import dagster as dg
    from dagster_k8s.job import get_user_defined_k8s_config

    instance, _ = chart_instance
    shards = chart.user_deployment(values, CODE_LOCATION)["env"]["SEEDTEST_REPORT_SHARDS"]
    monkeypatch.setenv("SEEDTEST_REPORT_SHARDS", shards)
    schedule = repo.get_schedule_def("report_artifacts_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 4, 0, tzinfo=UTC), repository_def=repo
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert len(requests) == int(shards) > 1
    job = repo.get_job(schedule.job_name)
    pods = []
    for request in requests:
        tags = {**job.tags, **request.tags}
        manifest = _launch(instance, values, monkeypatch, job.name, tags, request.run_config)
        k8s_validate(manifest)
        pods.append(manifest["spec"]["template"]["metadata"]["name"])
        report_pod = get_user_defined_k8s_config(job.tags).container_config["resources"]
        assert _container(manifest)["resources"] == report_pod
    assert len(set(pods)) == len(requests)
