"""The run queue of the production instance (deploy/dagster.yaml, on PostgreSQL): backfills and
heavy weekly batches never starve the sensor's online updates.

The queue decision is Dagster's own (``QueuedRunCoordinatorDaemon``, the code the daemon runs
each iteration) over runs stored in a real PostgreSQL instance and carrying the tags our jobs
really get. Only the step that would launch a process is left out: we ask which queued runs the
daemon would dequeue now.
"""

import json

import dagster as dg
import pytest
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from seedtest_assets.core import workloads
from seedtest_assets.definitions import build_defs
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.dagster_servers import dagster_yaml

defs = build_defs()

pytestmark = [pytest.mark.postgres]

BACKFILL = {"dagster/backfill": "bf1"}


def run_tags(job_name: str) -> dict[str, str]:
    """The tags a scheduled or sensor run of ``job_name`` carries (job tags, as strings)."""
    tags = defs.resolve_job_def(job_name).tags
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}


@pytest.fixture
def instance(tmp_path):
    _require_postgres()
    url = create_postgres_database("seedtest_queue_instance")
    (tmp_path / "dagster.yaml").write_text(dagster_yaml(url))
    inst = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        yield inst
    finally:
        inst.dispose()
        drop_postgres_database(url)


def origin(job: str) -> RemoteJobOrigin:
    """Where a run of ``job`` comes from: our code location, as workspace.yaml names it."""
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name="seedtest_assets.definitions"),
        location_name="seedtest_assets",
    )
    return RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(location, "__repository__"), job_name=job
    )


def add_runs(instance, n: int, job: str, status: DagsterRunStatus, **extra) -> list[str]:
    tags = {**run_tags(job), **extra}
    return [
        create_run_for_test(
            instance, job_name=job, status=status, tags=tags, remote_job_origin=origin(job)
        ).run_id
        for _ in range(n)
    ]


def would_dequeue(instance) -> list[str]:
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    runs = daemon._get_runs_to_dequeue(  # the daemon's decision, without launching processes
        instance, instance.get_concurrency_config(), fixed_iteration_time=None
    )
    return [r.run_id for r in runs]


def test_job_tags_classify_the_workloads():
    assert run_tags("student_rescore_job")[workloads.WORKLOAD_TAG] == workloads.ONLINE
    assert run_tags("student_rescore_job")[workloads.PRIORITY_TAG] == "10"
    for heavy in ("mirt_weekly_job", "report_artifacts_job"):
        assert run_tags(heavy)[workloads.WORKLOAD_TAG] == workloads.HEAVY
    for light in ("features_topic_daily_job", "weekly_kpi_job", "user_inactivity_job"):
        assert workloads.WORKLOAD_TAG not in run_tags(light)


def test_a_full_backfill_and_heavy_batches_leave_the_online_update_a_slot(instance):
    # In progress: as many backfill and heavy runs as the limits allow.
    add_runs(instance, 3, "features_topic_daily_job", DagsterRunStatus.STARTED, **BACKFILL)
    add_runs(instance, 2, "mirt_weekly_job", DagsterRunStatus.STARTED)
    # Queued first: a long backfill and more heavy batches (the sharded report runs).
    queued_backfill = add_runs(instance, 12, "mirt_weekly_job", DagsterRunStatus.QUEUED, **BACKFILL)
    queued_heavy = add_runs(instance, 4, "report_artifacts_job", DagsterRunStatus.QUEUED)
    # Then a sensor tick's online update, newest of all.
    [online] = add_runs(instance, 1, "student_rescore_job", DagsterRunStatus.QUEUED)

    chosen = would_dequeue(instance)
    assert chosen == [online]  # 5 of 10 slots busy, yet nothing else may start
    assert not set(chosen) & set(queued_backfill + queued_heavy)


def test_with_one_slot_left_the_online_update_goes_first(instance):
    add_runs(instance, 9, "features_topic_daily_job", DagsterRunStatus.STARTED)
    add_runs(instance, 5, "weekly_kpi_job", DagsterRunStatus.QUEUED)  # older: they wait
    [online] = add_runs(instance, 1, "student_rescore_job", DagsterRunStatus.QUEUED)
    assert would_dequeue(instance) == [online]  # priority beats first-in-first-out


def test_without_the_limits_the_same_queue_would_block_the_online_update(tmp_path):
    """The contrast: Dagster's defaults (no tag limits) let the backfill fill every slot."""
    _require_postgres()
    url = create_postgres_database("seedtest_queue_default")
    text = dagster_yaml(url)
    start = text.index("    tag_concurrency_limits:")
    end = text.index("    dequeue_interval_seconds:")
    (tmp_path / "dagster.yaml").write_text(text[:start] + text[end:])
    inst = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        add_runs(inst, 10, "mirt_weekly_job", DagsterRunStatus.STARTED, **BACKFILL)
        add_runs(inst, 1, "student_rescore_job", DagsterRunStatus.QUEUED)
        assert would_dequeue(inst) == []
    finally:
        inst.dispose()
        drop_postgres_database(url)
