"""What the official Dagster Helm chart renders from ``deploy/helm/values.yaml`` (test helper).

Neither ``helm`` nor the chart repository can be reached from our machines and CI, so the
tests cannot run ``helm template``. This module re-implements, in Python, the two pieces of
the chart whose output Dagster itself consumes, for the fields our values set:

- the instance ``dagster.yaml`` (chart ``templates/configmap-instance.yaml`` and its helpers
  ``helpers/instance/_postgresql.tpl``, ``_run-launcher.tpl``, ``_run-coordinator.tpl``,
  ``_scheduler.tpl``, ``_compute-log-manager.tpl``), mounted into the webserver, the daemon
  and every run pod;
- the container context the ``dagster-user-deployments`` subchart hands to the code server
  (``DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT``, from the helper
  ``dagsterUserDeployments.k8sContainerContext``), which K8sRunLauncher merges into each run's
  Job.

It mirrors the templates of chart version :data:`CHART_VERSION` (the newest versions of those
files we could read; the blocks we use have been stable across 1.x). Anything else in the chart
(Deployments, Services, RBAC) is not rendered here, and a value this module does not know
raises instead of being guessed. When the chart is upgraded, re-read those templates and update
this file; ``helm template`` on a machine with network access is the final word.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: The chart version whose templates this module follows (== the pinned dagster version).
CHART_VERSION = "1.13.27"
CHART_NAME = "dagster"
SUBCHART_NAME = "dagster-user-deployments"
#: The key the chart reads the instance database password from.
POSTGRES_PASSWORD_KEY = "postgresql-password"


def load_values(path: Path) -> dict[str, Any]:
    """A values file as plain data."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of a second values file: maps merge key by key, all else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _trunc63(name: str) -> str:
    return name[:63].rstrip("-")


def fullname(release: str, chart: str = CHART_NAME, override: str | None = None) -> str:
    """``dagster.fullname``: the release name if it contains the chart name, else both."""
    if override:
        return _trunc63(override)
    return _trunc63(release if chart in release else f"{release}-{chart}")


def _secret_names(sources: list[Mapping[str, Any]] | None) -> list[str]:
    """``range ... if hasKey $x "name"``: the names of a list of env sources."""
    return [s["name"] for s in sources or [] if "name" in s]


def _compact_nonempty(mapping: Mapping[str, Any] | None) -> bool:
    """Sprig ``not (empty (compact (values m)))``: some value is not empty/false/zero."""
    return any(bool(v) for v in (mapping or {}).values())


def postgres_secret_name(values: Mapping[str, Any], release: str) -> str:
    """``dagster.postgresql.secretName``."""
    name = values.get("global", {}).get("postgresqlSecretName")
    return name or f"{fullname(release)}-postgresql-secret"


def service_account_name(values: Mapping[str, Any], release: str) -> str:
    """``dagster.serviceAccountName`` (webserver, daemon, run launcher default)."""
    return (
        values.get("global", {}).get("serviceAccountName")
        or values.get("serviceAccount", {}).get("name")
        or fullname(release)
    )


def _postgres_config(values: Mapping[str, Any], release: str) -> dict[str, Any]:
    pg = values["postgresql"]
    # dagster.postgresql.host: the bundled server's Service unless a host is given.
    if pg["enabled"]:
        host = pg.get("postgresqlHost") or _trunc63(f"{release}-postgresql")
    else:
        host = pg["postgresqlHost"]
    config: dict[str, Any] = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": host,
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": pg.get("postgresqlParams") or {},
        }
    }
    if pg.get("postgresqlScheme"):
        config["postgres_db"]["scheme"] = pg["postgresqlScheme"]
    return config


def _scheduler(values: Mapping[str, Any]) -> dict[str, Any]:
    scheduler = values.get("scheduler", {"type": "DagsterDaemonScheduler"})
    if scheduler["type"] != "DagsterDaemonScheduler":
        raise NotImplementedError(f"scheduler type {scheduler['type']!r}")
    out: dict[str, Any] = {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"}
    daemon_cfg = scheduler.get("config", {}).get("daemonScheduler") or {}
    if _compact_nonempty(daemon_cfg):
        cfg = {}
        if daemon_cfg.get("maxCatchupRuns"):
            cfg["max_catchup_runs"] = daemon_cfg["maxCatchupRuns"]
        if daemon_cfg.get("maxTickRetries"):
            cfg["max_tick_retries"] = daemon_cfg["maxTickRetries"]
        out["config"] = cfg
    return out


def _k8s_run_launcher(values: Mapping[str, Any], release: str, namespace: str) -> dict[str, Any]:
    launcher = values["runLauncher"]
    if launcher["type"] != "K8sRunLauncher":
        raise NotImplementedError(f"run launcher type {launcher['type']!r}")
    k8s = launcher["config"]["k8sRunLauncher"]
    cfg: dict[str, Any] = {"load_incluster_config": k8s["loadInclusterConfig"]}
    if k8s.get("kubeconfigFile"):
        cfg["kubeconfig_file"] = k8s["kubeconfigFile"]
    cfg["job_namespace"] = k8s.get("jobNamespace") or namespace
    cfg["image_pull_policy"] = k8s["imagePullPolicy"]
    if values.get("imagePullSecrets"):
        cfg["image_pull_secrets"] = values["imagePullSecrets"]
    cfg["service_account_name"] = service_account_name(values, release)
    if "image" in k8s:
        image = k8s["image"]
        cfg["job_image"] = f"{image['repository']}:{image['tag']}"
    cfg["dagster_home"] = values["global"]["dagsterHome"]
    cfg["instance_config_map"] = f"{fullname(release)}-instance"
    cfg["postgres_password_secret"] = postgres_secret_name(values, release)
    if k8s.get("envConfigMaps"):
        cfg["env_config_maps"] = _secret_names(k8s["envConfigMaps"])
    if k8s.get("envSecrets"):
        cfg["env_secrets"] = _secret_names(k8s["envSecrets"])
    for key, target in (
        ("envVars", "env_vars"),
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
    ):
        if k8s.get(key):
            cfg[target] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        cfg["fail_pod_on_run_failure"] = True
    if k8s.get("schedulerName"):
        cfg["scheduler_name"] = k8s["schedulerName"]
    if k8s.get("securityContext"):
        cfg["security_context"] = k8s["securityContext"]
    run_k8s = k8s.get("runK8sConfig")
    if run_k8s:
        rendered = {}
        for key, target in (
            ("containerConfig", "container_config"),
            ("podSpecConfig", "pod_spec_config"),
            ("podTemplateSpecMetadata", "pod_template_spec_metadata"),
            ("jobSpecConfig", "job_spec_config"),
            ("jobMetadata", "job_metadata"),
        ):
            if run_k8s.get(key):
                rendered[target] = run_k8s[key]
        cfg["run_k8s_config"] = rendered
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": cfg}


def _queued_run_coordinator(values: Mapping[str, Any]) -> dict[str, Any]:
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    if coordinator["type"] != "QueuedRunCoordinator":
        raise NotImplementedError(f"run coordinator type {coordinator['type']!r}")
    q = coordinator["config"]["queuedRunCoordinator"]
    out: dict[str, Any] = {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
    }
    if _compact_nonempty(q):
        cfg: dict[str, Any] = {
            "max_concurrent_runs": -1
            if q.get("maxConcurrentRuns") is None
            else q["maxConcurrentRuns"]
        }
        for key, target in (
            ("tagConcurrencyLimits", "tag_concurrency_limits"),
            ("dequeueIntervalSeconds", "dequeue_interval_seconds"),
            ("dequeueUseThreads", "dequeue_use_threads"),
            ("dequeueNumWorkers", "dequeue_num_workers"),
        ):
            if q.get(key):
                cfg[target] = q[key]
        block = q.get("blockOpConcurrencyLimitedRuns")
        if block:
            cfg["block_op_concurrency_limited_runs"] = {
                "enabled": block["enabled"],
                "op_concurrency_slot_buffer": block["opConcurrencySlotBuffer"],
            }
        out["config"] = cfg
    return out


def _compute_logs(values: Mapping[str, Any]) -> dict[str, Any]:
    kind = values["computeLogManager"]["type"]
    if kind == "NoOpComputeLogManager":
        return {
            "module": "dagster.core.storage.noop_compute_log_manager",
            "class": "NoOpComputeLogManager",
        }
    raise NotImplementedError(f"compute log manager {kind!r}")


def _threads(block: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"use_threads": block["useThreads"]}
    if block.get("numWorkers"):
        out["num_workers"] = block["numWorkers"]
    if block.get("numSubmitWorkers"):
        out["num_submit_workers"] = block["numSubmitWorkers"]
    return out


def render_instance(
    values: Mapping[str, Any], *, release: str = "seedtest", namespace: str = "seedtest"
) -> dict[str, Any]:
    """The ``dagster.yaml`` of the chart's ``<release>-dagster-instance`` ConfigMap."""
    daemon = values["dagsterDaemon"]
    pg = _postgres_config(values, release)
    out: dict[str, Any] = {
        "scheduler": _scheduler(values),
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": pg,
        },
        "run_launcher": _k8s_run_launcher(values, release, namespace),
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": copy.deepcopy(pg),
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": copy.deepcopy(pg),
        },
    }
    if daemon["enabled"] and daemon["runCoordinator"]["enabled"]:
        out["run_coordinator"] = _queued_run_coordinator(values)
    out["compute_logs"] = _compute_logs(values)
    python_logs = values.get("pythonLogs")
    if python_logs:
        rendered = {}
        for key, target in (
            ("pythonLogLevel", "python_log_level"),
            ("dagsterHandlerConfig", "dagster_handler_config"),
            ("managedPythonLoggers", "managed_python_loggers"),
        ):
            if python_logs.get(key):
                rendered[target] = python_logs[key]
        out["python_logs"] = rendered
    monitoring = daemon.get("runMonitoring") or {}
    if daemon["enabled"] and monitoring.get("enabled"):
        rendered = {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
        }
        if monitoring.get("cancelTimeoutSeconds") is not None:
            rendered["cancel_timeout_seconds"] = monitoring["cancelTimeoutSeconds"]
        if monitoring.get("maxResumeRunAttempts") is not None:
            rendered["max_resume_run_attempts"] = monitoring["maxResumeRunAttempts"]
        rendered["poll_interval_seconds"] = monitoring["pollIntervalSeconds"]
        rendered["free_slots_after_run_end_seconds"] = monitoring["freeSlotsAfterRunEndSeconds"]
        out["run_monitoring"] = rendered
    retries = daemon.get("runRetries") or {}
    if daemon["enabled"] and retries.get("enabled"):
        out["run_retries"] = {"enabled": retries["enabled"]}
        if retries.get("maxRetries"):
            out["run_retries"]["max_retries"] = retries["maxRetries"]
    for key, target in (("sensors", "sensors"), ("schedules", "schedules")):
        block = daemon.get(key) or {}
        if daemon["enabled"] and block.get("useThreads"):
            out[target] = _threads(block)
    out["telemetry"] = {"enabled": values["telemetry"]["enabled"]}
    retention = values.get("retention") or {}
    if retention.get("enabled"):
        rendered = {}
        for key, target in (
            ("sensor", "sensor"),
            ("schedule", "schedule"),
            ("autoMaterialize", "auto_materialize"),
        ):
            if retention.get(key):
                rendered[target] = {"purge_after_days": retention[key]["purgeAfterDays"]}
        out["retention"] = rendered
    extra = values.get("additionalInstanceConfig") or {}
    clash = sorted(set(extra) & set(out))
    if clash:
        # The chart appends these as text: a repeated top-level key would be ambiguous YAML.
        raise ValueError(f"additionalInstanceConfig repeats rendered keys: {clash}")
    out.update(copy.deepcopy(extra))
    return out


def instance_yaml(values: Mapping[str, Any], **kwargs: str) -> str:
    """:func:`render_instance` as the YAML text of the ConfigMap's ``dagster.yaml`` key."""
    return yaml.safe_dump(render_instance(values, **kwargs), sort_keys=False)


def user_deployment(values: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One entry of ``dagster-user-deployments.deployments``."""
    for deployment in values[SUBCHART_NAME]["deployments"]:
        if deployment["name"] == name:
            return deployment
    raise KeyError(name)


def user_code_container_context(
    values: Mapping[str, Any],
    name: str,
    *,
    release: str = "seedtest",
    namespace: str = "seedtest",
) -> dict[str, Any]:
    """The container context the subchart gives code server ``name`` (and so its runs)."""
    sub = values[SUBCHART_NAME]
    deployment = user_deployment(values, name)
    include = deployment.get("includeConfigInLaunchedRuns") or {"enabled": True}
    if not include["enabled"]:
        return {}
    sub_fullname = fullname(release, SUBCHART_NAME)
    k8s: dict[str, Any] = {"image_pull_policy": deployment["image"]["pullPolicy"]}
    if sub.get("imagePullSecrets"):
        k8s["image_pull_secrets"] = sub["imagePullSecrets"]
    k8s["env_config_maps"] = [
        f"{sub_fullname}-{name}-user-env",
        *_secret_names(deployment.get("envConfigMaps")),
    ]
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = _secret_names(deployment["envSecrets"])
    for key, target in (
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
        ("schedulerName", "scheduler_name"),
    ):
        if deployment.get(key):
            k8s[target] = deployment[key]
    k8s["namespace"] = namespace
    k8s["service_account_name"] = (
        values.get("global", {}).get("serviceAccountName")
        or sub.get("serviceAccount", {}).get("name")
        or f"{sub_fullname}-user-deployments"
    )
    env = deployment.get("env")
    if env and isinstance(env, list):
        k8s["env"] = env
    run_k8s: dict[str, Any] = {"pod_spec_config": {"automount_service_account_token": True}}
    if deployment.get("annotations"):
        run_k8s["pod_template_spec_metadata"] = {"annotations": deployment["annotations"]}
    k8s["run_k8s_config"] = run_k8s
    return {"k8s": k8s}


def user_deployment_image(values: Mapping[str, Any], name: str) -> str:
    """``DAGSTER_CURRENT_IMAGE`` of code server ``name``: the image its runs use."""
    image = user_deployment(values, name)["image"]
    if image.get("digest"):
        return f"{image['repository']}@{image['digest']}"
    return f"{image['repository']}:{image.get('tag') or CHART_VERSION}"
