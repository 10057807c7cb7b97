"""The Dagster instance config used in Kubernetes, loaded the way Dagster loads it.

The chart renders ``dagster.yaml`` from deploy/helm/values.yaml (``chart.render_instance``,
mirroring chart 1.13.27's ``configmap-instance.yaml``); the webserver, the daemon and every
run pod then call ``DagsterInstance.from_config($DAGSTER_HOME)``. We do the same on a
throw-away PostgreSQL database, and load deploy/dagster.yaml the same way, and require the two
to agree on everything that governs runs: storage, queue, retries, monitoring, retention,
telemetry.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from seedtest_assets_tests.deploy import chart
from seedtest_assets_tests.deploy.conftest import DEPLOY, NAMESPACE, RELEASE


def _production_config() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text(encoding="utf-8"))


def _settings(instance) -> dict[str, Any]:
    """Everything about an instance that decides how runs are queued, retried and kept."""
    from dagster._core.definitions.run_request import InstigatorType

    queue = instance.get_concurrency_config().run_queue_config
    return {
        "run_coordinator": type(instance.run_coordinator).__name__,
        "max_concurrent_runs": queue.max_concurrent_runs,
        "tag_concurrency_limits": queue.tag_concurrency_limits,
        "dequeue_interval_seconds": instance.run_coordinator.dequeue_interval_seconds,
        "run_retries": (
            instance.run_retries_enabled,
            instance.run_retries_max_retries,
            instance.run_retries_retry_on_asset_or_op_failure,
        ),
        "run_monitoring": (
            instance.run_monitoring_enabled,
            instance.run_monitoring_start_timeout_seconds,
            instance.run_monitoring_cancel_timeout_seconds,
            instance.run_monitoring_max_resume_run_attempts,
            instance.run_monitoring_poll_interval_seconds,
            # absent and 0 both mean "off"
            instance.run_monitoring_settings.get("free_slots_after_run_end_seconds") or 0,
        ),
        "sensor_retention": dict(instance.get_tick_retention_settings(InstigatorType.SENSOR)),
        "schedule_retention": dict(instance.get_tick_retention_settings(InstigatorType.SCHEDULE)),
        "telemetry": instance.telemetry_enabled,
        "storage": (
            type(instance.run_storage).__name__,
            type(instance.event_log_storage).__name__,
            type(instance.schedule_storage).__name__,
        ),
        "scheduler": type(instance.scheduler).__name__,
    }


@pytest.mark.postgres
def test_chart_instance_loads_with_postgres_storage(chart_instance) -> None:
    instance, _ = chart_instance
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    # psycopg2 explicitly (platform note: psycopg 3 breaks dagster-postgres' NOTIFY).
    assert instance.run_storage.postgres_url.startswith("postgresql+psycopg2://")
    # The storage really works: the schema was created and can be queried.
    assert instance.get_runs() == []


@pytest.mark.postgres
def test_chart_instance_settings(chart_instance, values) -> None:
    instance, rendered = chart_instance
    settings = _settings(instance)
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert settings["run_coordinator"] == "QueuedRunCoordinator"
    assert settings["max_concurrent_runs"] == queue["maxConcurrentRuns"] == 10
    assert settings["run_retries"] == (True, 1, False)
    assert settings["run_monitoring"] == (True, 300, 300, 0, 60, 0)
    assert settings["telemetry"] is False
    assert settings["scheduler"] == "DagsterDaemonScheduler"
    assert type(instance.compute_log_manager).__name__ == "NoOpComputeLogManager"
    assert set(rendered) >= {"run_storage", "run_launcher", "run_coordinator", "retention"}


@pytest.mark.postgres
def test_chart_and_deploy_dagster_yaml_agree(chart_instance, production_instance) -> None:
    """Same queue limits, retries, monitoring, retention and telemetry on Kubernetes as in the
    production dagster.yaml, read back from the loaded instances."""
    instance, _ = chart_instance
    assert _settings(instance) == _settings(production_instance)


def test_queue_limits_equal_deploy_dagster_yaml_number_for_number(values) -> None:
    """The same comparison on the files themselves (no database needed)."""
    production = _production_config()["run_coordinator"]["config"]
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["maxConcurrentRuns"] == production["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == production["tag_concurrency_limits"]
    assert queue["dequeueIntervalSeconds"] == production["dequeue_interval_seconds"]
    rendered = chart.render_instance(values)
    assert rendered["run_coordinator"] == _production_config()["run_coordinator"]
    assert rendered["run_retries"] == _production_config()["run_retries"]


@pytest.mark.postgres
def test_chart_run_launcher(chart_instance, values) -> None:
    instance, _ = chart_instance
    from dagster_k8s import K8sRunLauncher

    launcher = instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.job_namespace == NAMESPACE
    assert launcher.dagster_home == values["global"]["dagsterHome"]
    assert launcher.instance_config_map == f"{RELEASE}-dagster-instance"
    assert launcher.postgres_password_secret == values["global"]["postgresqlSecretName"]
    assert list(launcher.env_secrets) == ["seedtest-db-credentials", "aws-s3-credentials"]
    assert launcher.fail_pod_on_run_failure is True
    container = launcher.run_k8s_config["container_config"]
    assert container["resources"]["requests"]["memory"] == "2Gi"


def test_in_cluster_run_launcher_config_is_valid(values) -> None:
    """The unmodified launcher config (in-cluster credentials, SITE names) against
    K8sRunLauncher's config schema, without a cluster to instantiate it in."""
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    rendered = chart.render_instance(values, release=RELEASE, namespace=NAMESPACE)
    config = rendered["run_launcher"]["config"]
    assert config["load_incluster_config"] is True and "kubeconfig_file" not in config
    result = process_config(K8sRunLauncher.config_type(), config)
    assert result.success, result.errors


def test_unmodified_rendered_yaml_passes_dagsters_instance_schema(values, tmp_path) -> None:
    """The exact file the ConfigMap would hold (SITE database host and all) is schema-valid."""
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text(
        chart.instance_yaml(values, release=RELEASE, namespace=NAMESPACE)
    )
    config, instance_class = dagster_instance_config(str(tmp_path))
    assert instance_class is None
    hostname = config["run_storage"]["config"]["postgres_db"]["hostname"]
    assert hostname == values["postgresql"]["postgresqlHost"]


def test_renderer_refuses_what_it_does_not_mirror(values) -> None:
    """Values outside what the renderer follows fail loudly rather than being guessed."""
    with pytest.raises(ValueError, match="repeats rendered keys"):
        chart.render_instance(
            chart.merge_values(values, {"additionalInstanceConfig": {"telemetry": {}}})
        )
    with pytest.raises(NotImplementedError):
        chart.render_instance(
            chart.merge_values(values, {"computeLogManager": {"type": "S3ComputeLogManager"}})
        )


def test_laptop_and_production_instances_retry_the_same_runs() -> None:
    # docs/operations.md: a run whose process died is retried once, a failed asset is not;
    # both instance files must say so (the laptop file once retried asset failures too).
    import yaml

    from seedtest_assets_tests.deploy.conftest import DEPLOY, ROOT

    laptop = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    production = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert laptop["run_retries"] == production["run_retries"]
    assert laptop["run_retries"]["retry_on_asset_or_op_failure"] is False
    # ... and both notice a run whose worker vanished (not STARTED forever).
    assert laptop["run_monitoring"] == production["run_monitoring"]
    assert laptop["run_monitoring"]["enabled"] is True
