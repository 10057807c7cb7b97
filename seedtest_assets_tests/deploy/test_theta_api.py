"""deploy/k8s/theta-api.yaml: the θ-update service's Deployment, Service and NetworkPolicy."""

from __future__ import annotations

from seedtest_assets.cli import build_parser
from seedtest_assets_tests.deploy.conftest import K8S_DIR, NAMESPACE, yaml_docs

DOCS = {d["kind"]: d for d in yaml_docs(K8S_DIR / "theta-api.yaml")}


def _container() -> dict:
    (container,) = DOCS["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def test_the_pod_runs_seedtest_serve_with_valid_arguments():
    args = _container()["args"]
    assert args[:2] == ["seedtest", "serve"]
    parsed = build_parser().parse_args(args[1:])
    assert (parsed.host, parsed.port, parsed.workers) == ("0.0.0.0", 8000, 2)
    env = {e["name"]: e.get("value") for e in _container()["env"]}
    assert env["LOCAL_DEV"] == "false"
    assert {"JWKS_URL", "JWT_AUD", "JWT_ISS", "PROMETHEUS_MULTIPROC_DIR"} <= set(env)


def test_probes_resources_and_security():
    c = _container()
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/tmp" in mounts  # the metrics folder of a read-only root


def test_the_service_is_cluster_internal_and_selects_the_pods():
    svc = DOCS["Service"]
    assert svc["metadata"]["namespace"] == NAMESPACE
    assert svc["spec"]["type"] == "ClusterIP"
    labels = DOCS["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in svc["spec"]["selector"].items())


def test_only_the_exam_app_and_monitoring_namespaces_are_admitted():
    policy = DOCS["NetworkPolicy"]
    labels = DOCS["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(labels[k] == v for k, v in selector.items())
    (rule,) = policy["spec"]["ingress"]
    namespaces = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]
    }
    assert namespaces == {"exam-app", "monitoring"}
    assert all("podSelector" not in p for p in rule["from"])  # no pod of this namespace
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
