"""Fixtures for the deploy tests: paths, the Helm values, Kubernetes schema validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from seedtest_assets_tests.deploy import chart

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALUES = DEPLOY / "helm" / "values.yaml"
K8S_DIR = DEPLOY / "k8s"
#: The Kubernetes API version our manifests and generated Jobs are validated against.
KUBERNETES_VERSION = "1.31"
RELEASE = "seedtest"
NAMESPACE = "seedtest"
#: The code server in the values (its name is also its Service and UI location name).
CODE_LOCATION = "seedtest-assets"
#: The interpreter of the image's virtualenv (deploy/Dockerfile): runs start with it.
VENV_PYTHON = "/opt/venv/bin/python"


def k8s_validate(doc: dict[str, Any]) -> None:
    """Raise unless ``doc`` is a valid object of the pinned Kubernetes API (strict: no
    unknown fields)."""
    import kubernetes_validate

    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``path``."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


@pytest.fixture(scope="session")
def values() -> dict[str, Any]:
    return chart.load_values(VALUES)


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory) -> Path:
    """A kubeconfig naming an unreachable API server: lets K8sRunLauncher start outside a
    cluster (it only parses the file; no test talks to Kubernetes)."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    return path


def _pg_overrides(url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return {
        "postgresql": {
            "postgresqlHost": u.host or "127.0.0.1",
            "postgresqlUsername": u.username or "postgres",
            "postgresqlDatabase": u.database,
            "service": {"port": u.port or 5432},
        }
    }


@pytest.fixture(scope="session")
def chart_instance(values, kubeconfig, tmp_path_factory):
    """The Dagster instance of the chart's rendered dagster.yaml, loaded the way the webserver,
    daemon and run pods load it (``DagsterInstance.from_config($DAGSTER_HOME)``, password from
    ``DAGSTER_PG_PASSWORD``), on a throw-away PostgreSQL database.

    Only two things differ from the cluster: the database address (ours, not the SITE host)
    and the run launcher's kubeconfig (a file instead of the in-cluster service account).
    Yields ``(instance, rendered_config)``.
    """
    from dagster import DagsterInstance

    from seedtest_assets_tests.conftest import (
        _require_postgres,
        create_postgres_database,
        drop_postgres_database,
    )

    _require_postgres()
    url = create_postgres_database("seedtest_deploy")
    local = chart.merge_values(
        values,
        {
            **_pg_overrides(url),
            "runLauncher": {
                "config": {
                    "k8sRunLauncher": {
                        "loadInclusterConfig": False,
                        "kubeconfigFile": str(kubeconfig),
                    }
                }
            },
        },
    )
    rendered = chart.render_instance(local, release=RELEASE, namespace=NAMESPACE)
    home = tmp_path_factory.mktemp("chart_dagster_home")
    (home / "dagster.yaml").write_text(
        chart.instance_yaml(local, release=RELEASE, namespace=NAMESPACE)
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_PG_PASSWORD", "unused-with-trust-auth")
        instance = DagsterInstance.from_config(str(home))
        try:
            yield instance, rendered
        finally:
            instance.dispose()
            drop_postgres_database(url)


@pytest.fixture(scope="session")
def production_instance(tmp_path_factory):
    """``deploy/dagster.yaml`` loaded the same way, its ``DAGSTER_PG_*`` pointing at another
    throw-away database."""
    import shutil

    from dagster import DagsterInstance
    from sqlalchemy.engine import make_url

    from seedtest_assets_tests.conftest import (
        _require_postgres,
        create_postgres_database,
        drop_postgres_database,
    )

    _require_postgres()
    url = create_postgres_database("seedtest_deploy")
    u = make_url(url)
    home = tmp_path_factory.mktemp("production_dagster_home")
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_PG_HOST", u.host or "127.0.0.1")
        mp.setenv("DAGSTER_PG_PORT", str(u.port or 5432))
        mp.setenv("DAGSTER_PG_USER", u.username or "postgres")
        mp.setenv("DAGSTER_PG_PASSWORD", "unused-with-trust-auth")
        mp.setenv("DAGSTER_PG_DB", u.database)
        instance = DagsterInstance.from_config(str(home))
        try:
            yield instance
        finally:
            instance.dispose()
            drop_postgres_database(url)
