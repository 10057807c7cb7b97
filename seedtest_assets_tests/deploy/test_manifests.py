"""The Kubernetes manifests we own (deploy/k8s): schema-valid, private webserver, one way in."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from seedtest_assets_tests.deploy import chart
from seedtest_assets_tests.deploy.conftest import (
    K8S_DIR,
    NAMESPACE,
    RELEASE,
    k8s_validate,
    yaml_docs,
)

#: Custom resources: not in the Kubernetes API schemas; checked against their documented shape.
CRD_GROUPS = {"external-secrets.io", "kustomize.config.k8s.io"}

#: Every Secret the deployment reads, and the keys each must hold (deploy/README.md).
REQUIRED_SECRETS = {
    "seedtest-db-credentials": {"DATABASE_URL"},
    "aws-s3-credentials": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "seedtest-dagster-postgresql": {chart.POSTGRES_PASSWORD_KEY},
    "oauth2-proxy-credentials": {"client-id", "client-secret", "cookie-secret"},
}


def _group(doc: dict[str, Any]) -> str:
    api = doc["apiVersion"]
    return api.split("/")[0] if "/" in api else ""


def _all_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in sorted(K8S_DIR.rglob("*.y*ml")) for d in yaml_docs(p)]


def _api_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, d in _all_docs() if _group(d) not in CRD_GROUPS]


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in _api_docs() if d["kind"] == kind]


def _one(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in _by_kind(kind) if d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize(
    "path,doc",
    _api_docs(),
    ids=[f"{p.relative_to(K8S_DIR)}:{d['kind']}/{d['metadata']['name']}" for p, d in _api_docs()],
)
def test_manifest_is_valid_kubernetes(path: Path, doc: dict[str, Any]) -> None:
    """Strict schema validation (unknown fields are errors) against the pinned API version."""
    k8s_validate(doc)
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == NAMESPACE, path


def test_every_manifest_kind_is_known() -> None:
    """A typo in apiVersion/kind must not turn a manifest into an unvalidated 'custom' one."""
    kinds = {(d["apiVersion"], d["kind"]) for _, d in _all_docs()}
    assert {k for k in kinds if k[0].split("/")[0] in CRD_GROUPS} <= {
        ("external-secrets.io/v1", "ExternalSecret"),
        ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    }
    assert {
        "Namespace",
        "NetworkPolicy",
        "Deployment",
        "Service",
        "Ingress",
        "Job",
    } <= {d["kind"] for _, d in _api_docs()}


def test_broken_manifests_are_rejected() -> None:
    """The check can fail: an unknown field, a wrong type and an unknown kind are all errors."""
    import kubernetes_validate

    good = _one("Deployment", "oauth2-proxy")
    k8s_validate(good)

    typo = copy.deepcopy(good)
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(typo)

    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(wrong_type)

    missing = copy.deepcopy(good)
    del missing["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(missing)

    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        k8s_validate({**good, "apiVersion": "apps/v1", "kind": "Deploymnet"})


def test_kustomization_lists_the_standing_manifests() -> None:
    (kustomization,) = yaml_docs(K8S_DIR / "kustomization.yaml")
    assert kustomization["namespace"] == NAMESPACE
    listed = kustomization["resources"]
    for name in listed:
        assert (K8S_DIR / name).is_file(), name
    standing = {
        str(p.relative_to(K8S_DIR))
        for p in K8S_DIR.glob("*.yaml")
        if p.name not in ("kustomization.yaml", "warehouse-migrate-job.yaml")
    }
    assert set(listed) == standing


def test_external_secrets_have_the_documented_shape() -> None:
    """ExternalSecret (external-secrets.io/v1) fields as the operator documents them, and
    together they produce exactly the Secrets and keys the deployment reads."""
    produced: dict[str, set[str]] = {}
    for _, doc in _all_docs():
        if doc["kind"] != "ExternalSecret":
            continue
        assert doc["apiVersion"] == "external-secrets.io/v1"
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
        assert doc["metadata"]["namespace"] == NAMESPACE
        spec = doc["spec"]
        assert set(spec) <= {"refreshInterval", "secretStoreRef", "target", "data", "dataFrom"}
        assert spec["secretStoreRef"]["kind"] in ("SecretStore", "ClusterSecretStore")
        assert spec["secretStoreRef"]["name"]
        assert set(spec["target"]) <= {"name", "creationPolicy", "deletionPolicy", "template"}
        assert spec["target"]["creationPolicy"] in ("Owner", "Orphan", "Merge", "None")
        keys = set()
        for item in spec["data"]:
            assert set(item) == {"secretKey", "remoteRef"}
            assert set(item["remoteRef"]) <= {
                "key",
                "property",
                "version",
                "conversionStrategy",
                "decodingStrategy",
                "metadataPolicy",
            }
            assert item["remoteRef"]["key"]
            keys.add(item["secretKey"])
        produced[spec["target"]["name"]] = keys
    assert produced == REQUIRED_SECRETS


def test_secrets_read_by_manifests_and_values_are_the_documented_ones(values) -> None:
    """Every Secret named anywhere is one of the documented four (plus the TLS certificate)."""
    named: dict[str, set[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if ref:
                named.setdefault(ref["name"], set()).add(ref["key"])
            ref = node.get("secretRef")
            if ref:
                named.setdefault(ref["name"], set())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for _, doc in _api_docs():
        walk(doc)
    deployment = chart.user_deployment(values, "seedtest-assets")
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for source in deployment["envSecrets"] + launcher["envSecrets"]:
        named.setdefault(source["name"], set())
    named.setdefault(values["global"]["postgresqlSecretName"], set()).add(
        chart.POSTGRES_PASSWORD_KEY
    )
    assert set(named) == set(REQUIRED_SECRETS)
    for name, keys in named.items():
        assert keys <= REQUIRED_SECRETS[name], name
    (ingress,) = _by_kind("Ingress")
    assert ingress["spec"]["tls"][0]["secretName"] == "seedtest-dagster-tls"


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are used here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _webserver_pod_labels(values) -> dict[str, str]:
    """The chart's labels on webserver pods (dagster.selectorLabels + component)."""
    return {
        "app.kubernetes.io/name": values.get("nameOverride") or chart.CHART_NAME,
        "app.kubernetes.io/instance": RELEASE,
        "component": "dagster-webserver",
    }


def _allowed_sources(pod_labels: dict[str, str]) -> list[dict[str, Any]]:
    """The ingress rules of every NetworkPolicy that selects pods with ``pod_labels``."""
    rules = []
    for policy in _by_kind("NetworkPolicy"):
        if _matches(policy["spec"]["podSelector"], pod_labels):
            assert "Ingress" in policy["spec"]["policyTypes"]
            rules += policy["spec"].get("ingress", [])
    return rules


def test_only_the_login_proxy_reaches_the_webserver(values) -> None:
    (deny,) = [
        p for p in _by_kind("NetworkPolicy") if p["metadata"]["name"] == "default-deny-ingress"
    ]
    assert deny["spec"]["podSelector"] == {} and "ingress" not in deny["spec"]

    proxy = _one("Deployment", "oauth2-proxy")
    proxy_labels = proxy["spec"]["template"]["metadata"]["labels"]
    rules = _allowed_sources(_webserver_pod_labels(values))
    assert rules, "no policy selects the webserver pods: the chart's labels changed?"
    port = values["dagsterWebserver"]["service"]["port"]
    for rule in rules:
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        for source in rule["from"]:
            assert set(source) == {"podSelector"}, "only pods of this namespace, by label"
            assert _matches(source["podSelector"], proxy_labels)
            assert source["podSelector"]["matchLabels"], "not every pod"


def test_login_proxy_fronts_the_webserver_over_tls(values) -> None:
    proxy = _one("Deployment", "oauth2-proxy")
    container = proxy["spec"]["template"]["spec"]["containers"][0]
    args = dict(a.split("=", 1) for a in container["args"])
    webserver = f"{RELEASE}-{values['dagsterWebserver']['nameOverride']}"
    port = values["dagsterWebserver"]["service"]["port"]
    assert args["--upstream"] == f"http://{webserver}.{NAMESPACE}.svc.cluster.local:{port}/"
    assert args["--provider"] == "oidc"
    assert args["--cookie-secure"] == "true"
    assert ":latest" not in container["image"] and container["image"].count(":") == 1
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(env) == {
        "OAUTH2_PROXY_CLIENT_ID",
        "OAUTH2_PROXY_CLIENT_SECRET",
        "OAUTH2_PROXY_COOKIE_SECRET",
    }
    service = _one("Service", "oauth2-proxy")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == proxy["spec"]["selector"]["matchLabels"]

    (ingress,) = _by_kind("Ingress")
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert hosts <= set(ingress["spec"]["tls"][0]["hosts"])
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"oauth2-proxy"}
    assert f"https://{next(iter(hosts))}/oauth2/callback" == args["--redirect-url"]


def test_nothing_exposes_the_webserver_directly(values) -> None:
    """No Service of ours is public, and the chart's own Ingress and Service stay private."""
    for service in _by_kind("Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert values["ingress"]["enabled"] is False
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"


def test_migration_job_runs_the_cli_with_the_warehouse_secret(values) -> None:
    job = _one("Job", "seedtest-warehouse-migrate")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["seedtest", "db", "upgrade"]
    assert "command" not in container, "keep the image's ENTRYPOINT (tini)"
    assert container["envFrom"] == [{"secretRef": {"name": "seedtest-db-credentials"}}]
    image = chart.user_deployment(values, "seedtest-assets")["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
