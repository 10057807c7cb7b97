"""Workload classes: the run tags the run queue limits, and the pod sizes Kubernetes gives them.

Three classes, chosen so that the sensor's online updates never queue behind batch work:

- ``online``: ``student_rescore_job`` (one run per sensor tick); first in the queue
  (``dagster/priority``) and never counted against a limit.
- ``heavy``: IRT calibration/scoring and report rendering; at most 2 at once
  (``deploy/dagster.yaml``, the Helm values), because they take 2 cores and several GiB each.
- everything else (daily features, KPIs, inactivity): small and unlimited but for the total.

The pod sizes are ``dagster-k8s/config`` tags. On asset ops they size the step pods of
``k8s_job_executor`` (``SEEDTEST_EXECUTOR=k8s``); on jobs they size the run pod that
``K8sRunLauncher`` starts. Figures from docs/benchmarks.md at 100k students: calibration
+303 MiB on 6M responses but 2.4 GiB for the KPI week and ≈50-150 s of 2 busy cores for
calibration and scoring; report workers ≈0.3 GiB each. Limits leave room for 2x growth.
This module is plain data: it does not import Dagster.
"""

WORKLOAD_TAG = "seedtest/workload"
#: The queue's priority tag (higher first); Dagster's own key.
PRIORITY_TAG = "dagster/priority"
#: The tag dagster-k8s reads for pod/container settings.
K8S_CONFIG_TAG = "dagster-k8s/config"

ONLINE = "online"
HEAVY = "heavy"


def _pod(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> dict:
    return {
        "container_config": {
            "resources": {
                "requests": {"cpu": cpu_request, "memory": memory_request},
                "limits": {"cpu": cpu_limit, "memory": memory_limit},
            }
        }
    }


#: IRT calibration (EM over 12 weeks of responses) and weekly EAP + growth scoring.
IRT_POD = _pod("2", "6Gi", "4", "12Gi")
#: Report rendering: a parent and one typst worker per core.
REPORT_POD = _pod("2", "3Gi", "4", "6Gi")
#: Daily features, weekly KPIs, inactivity, data-quality checks.
BATCH_POD = _pod("1", "2Gi", "2", "4Gi")
#: One sensor tick's online θ updates (a few thousand students at most).
ONLINE_POD = _pod("500m", "1Gi", "1", "2Gi")


def op_tags(pod: dict) -> dict[str, object]:
    """Tags for an asset's op: its step pod under ``k8s_job_executor``."""
    return {K8S_CONFIG_TAG: pod}


def heavy_job_tags(pod: dict) -> dict[str, object]:
    """Tags for a heavy job: counted against the ``heavy`` limit, run pod sized by ``pod``."""
    return {WORKLOAD_TAG: HEAVY, K8S_CONFIG_TAG: pod}


def batch_job_tags() -> dict[str, object]:
    """Tags for a light scheduled job: run pod sized as batch work, no queue limit."""
    return {K8S_CONFIG_TAG: BATCH_POD}


#: The online update job: ahead of everything queued, in a small pod.
ONLINE_JOB_TAGS: dict[str, object] = {
    WORKLOAD_TAG: ONLINE,
    PRIORITY_TAG: "10",
    K8S_CONFIG_TAG: ONLINE_POD,
}
