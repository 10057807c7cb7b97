"""The laptop instance's batched SQLite event log (defs/event_storage.py) stores what Dagster's
own SQLite storage stores, in bulk.

Runs one job that records 1,202 per-student materializations (two storage batches of
``EVENT_BATCH_SIZE``, the last one partial) plus ordinary events, on an instance with the stock
``SqliteEventLogStorage`` and on one with ``BatchedSqliteEventLogStorage``; the UI's queries
(latest materialization per partition, materialized partitions, the run's event log, the
asset's record) must give the same answers.
"""

from pathlib import Path

import dagster as dg
import yaml

from seedtest_assets.defs.event_storage import BatchedSqliteEventLogStorage
from seedtest_assets.defs.partitions import users
from seedtest_assets.defs.student_events import record_student_materializations
from seedtest_assets.runs import REPO_DAGSTER_YAML

STUDENTS = [f"u-{i:06d}" for i in range(1_200)] + ["test-user-123", "학생-7"]
STUDENT_KEY = dg.AssetKey(["student", "probe"])


@dg.asset
def probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    path = record_student_materializations(
        context,
        STUDENT_KEY,
        {u: {"theta": float(i) / 1000, "n": i} for i, u in enumerate(STUDENTS)},
    )
    return dg.MaterializeResult(metadata={"per_student_events": path})


STOCK = {"module": "dagster._core.storage.event_log", "class": "SqliteEventLogStorage"}
BATCHED = {"module": "seedtest_assets.defs.event_storage", "class": "BatchedSqliteEventLogStorage"}


def run_once(tmp: Path, storage: dict) -> dict:
    home = tmp / storage["class"]
    home.mkdir()
    config = {**storage, "config": {"base_dir": str(home / "history" / "runs")}}
    with dg.instance_for_test(temp_dir=str(home), overrides={"event_log_storage": config}) as inst:
        assert type(inst.event_log_storage).__name__ == storage["class"]
        result = dg.materialize([probe], instance=inst)
        assert result.success
        meta = result.asset_materializations_for_node("probe")[0].metadata
        records = inst.fetch_materializations(STUDENT_KEY, limit=10_000).records
        latest = inst.get_latest_materialization_event(STUDENT_KEY)
        logs = inst.all_logs(result.run_id)
        return {
            "path": meta["per_student_events"].value,
            "partitions": inst.get_materialized_partitions(STUDENT_KEY),
            "registered": set(inst.get_dynamic_partitions(users.name)),
            "records": sorted(
                (r.partition_key, r.asset_materialization.metadata["theta"].value) for r in records
            ),
            "latest": latest.asset_materialization.partition,
            "run_events": sorted(
                (e.dagster_event_type.value, e.dagster_event.partition or "")
                for e in logs
                if e.is_dagster_event
            ),
            "asset_keys": {k.to_user_string() for k in inst.get_asset_keys()},
        }


def test_batched_storage_records_exactly_what_the_stock_storage_does(tmp_path) -> None:
    stock, batched = run_once(tmp_path, STOCK), run_once(tmp_path, BATCHED)
    assert stock["path"] == batched["path"] == "batched"
    assert batched["partitions"] == set(STUDENTS) == stock["partitions"]
    assert batched["registered"] == stock["registered"] == set(STUDENTS)
    assert len(batched["records"]) == len(STUDENTS)
    assert batched["records"] == stock["records"]
    assert batched["latest"] == stock["latest"] == STUDENTS[-1]  # the last one recorded
    assert batched["run_events"] == stock["run_events"]
    assert batched["asset_keys"] == stock["asset_keys"] == {"probe", "student/probe"}


def test_the_repository_instance_uses_it_and_finds_its_folder(tmp_path, monkeypatch) -> None:
    config = yaml.safe_load(REPO_DAGSTER_YAML.read_text())
    assert config["event_log_storage"]["class"] == BatchedSqliteEventLogStorage.__name__
    assert "config" not in config["event_log_storage"]  # the folder comes from DAGSTER_HOME
    (tmp_path / "dagster.yaml").write_text(REPO_DAGSTER_YAML.read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, BatchedSqliteEventLogStorage)
        assert Path(storage._base_dir) == tmp_path / "history" / "runs"


def test_without_dagster_home_a_scratch_instance_gets_a_temporary_folder(monkeypatch) -> None:
    """What ``dg check defs`` does: the repository's dagster.yaml in a scratch instance."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    first, second = BatchedSqliteEventLogStorage(), BatchedSqliteEventLogStorage()
    assert Path(first._base_dir).is_dir() and first._base_dir != second._base_dir
    assert Path(first._base_dir).name.startswith("seedtest-dagster-events-")
