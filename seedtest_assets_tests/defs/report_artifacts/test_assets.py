"""The Dagster shell: materializing report_artifacts and student/report_artifacts on SQLite.

The code's clock is frozen for every test (the ``clock`` fixture) and the report week is the
last complete week by that clock (``latest``), so the batch records per-student events at any
real time, also across Monday 00:00 UTC.
"""

import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import func, select

from seedtest_assets.core.warehouse import make_engine
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.automation.schedules import report_artifacts_schedule
from seedtest_assets.defs.partitions import last_complete_week, users
from seedtest_assets.defs.report_artifacts.assets import (
    STUDENT_REPORTS,
    report_artifacts,
    student_report_artifacts,
)
from seedtest_assets.defs.resources import (
    ReportStoreResource,
    WarehouseResource,
    report_store_from_env,
)
from seedtest_assets_tests.clock import MONDAY_MORNING, NOON, SUNDAY_NIGHT
from seedtest_assets_tests.report_helpers import HungEndpoint, seed_week


@pytest.fixture
def latest(clock) -> str:
    """The last complete week at the frozen now, so the batch also records per-student events
    (ADR 0001)."""
    return last_complete_week(clock.now)


@pytest.fixture
def url(sqlite_url, latest) -> str:
    seed_week(sqlite_url, n_users=6, week=date.fromisoformat(latest))
    return sqlite_url


def resources(url: str, home) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=url),
        "report_store": ReportStoreResource(local_dir=str(home)),
    }


def count_rows(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(s.report_artifacts)).scalar_one()
    engine.dispose()
    return n


def run_config(asset: str, **config) -> dict:
    return {"ops": {asset: {"config": config}}}


@pytest.mark.parametrize(
    "clock",
    [
        pytest.param(NOON, id="wednesday"),
        pytest.param(SUNDAY_NIGHT, id="sunday-23:59:50"),
        pytest.param(MONDAY_MORNING, id="monday-00:00:10"),
    ],
    indirect=True,
)
def test_weekly_batch_materializes_records_and_logs_per_student_events(url, latest, tmp_path):
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [report_artifacts],
            resources=resources(url, home),
            instance=instance,
            partition_key=latest,
        )
        assert result.success
        meta = result.asset_materializations_for_node("report_artifacts")[0].metadata
        assert meta["students_selected"].value == 6 and meta["students_failed"].value == 0
        assert meta["rows_recorded"].value == 12 and meta["renderer"].value == "pandoc"
        assert meta["per_student_events"].value == "batched"
        assert instance.get_materialized_partitions(STUDENT_REPORTS) == {
            "1",
            "2",
            "3",
            "4",
            "5",
            "100",
        }
        ev = instance.get_latest_materialization_event(STUDENT_REPORTS)
        m = ev.asset_materialization.metadata
        assert m["week_start"].value == latest and m["pdf_key"].value.endswith(".pdf")
        assert "url" not in " ".join(m)  # presigned URLs are bearer tokens: not in the log
    assert count_rows(url) == 12
    assert len(list((home / "reports" / latest).iterdir())) == 12


def test_selection_through_config_and_dry_run_writes_nothing(url, latest, tmp_path):
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [report_artifacts],
            resources=resources(url, home),
            instance=instance,
            partition_key=latest,
            run_config=run_config("report_artifacts", dry_run=True, org_ids=["1"], max_users=2),
        )
        assert result.success
        assert result.asset_materializations_for_node("report_artifacts") == []
        assert not home.exists() and count_rows(url) == 0
        assert instance.get_materialized_partitions(STUDENT_REPORTS) == set()

        result = dg.materialize(
            [report_artifacts],
            resources=resources(url, home),
            instance=instance,
            partition_key=latest,
            run_config=run_config(
                "report_artifacts", user_ids=["2", "100"], formats=["pdf"], lang="en"
            ),
        )
        meta = result.asset_materializations_for_node("report_artifacts")[0].metadata
        assert meta["students_selected"].value == 2 and meta["rows_recorded"].value == 2
    assert sorted(p.name for p in (home / "reports" / latest).iterdir()) == ["100.pdf", "2.pdf"]


def test_failed_students_fail_the_run_after_the_others_are_recorded(url, latest, tmp_path):
    home = tmp_path / "home"
    # A directory where student 3's PDF should go: that one write fails.
    (home / "reports" / latest / "3.pdf").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [report_artifacts],
            resources=resources(url, home),
            instance=instance,
            partition_key=latest,
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        info = failure.step_failure_data.user_failure_data
        assert "1 of 6 students' reports failed" in info.description
        assert "Failed: 3." in info.description
        assert info.metadata["failed_user_ids"].value == ["3"]
        assert info.metadata["rows_recorded"].value == 11
        # The other students are current in the UI; student 3 is not.
        assert "3" not in instance.get_materialized_partitions(STUDENT_REPORTS)
        assert "2" in instance.get_materialized_partitions(STUDENT_REPORTS)
    assert count_rows(url) == 11


@pytest.mark.slow
def test_a_hung_store_fails_the_run_saying_it_was_judged_down(url, latest, tmp_path, aws_env):
    """S3 endpoint accepts connections and never answers: the run fails in bounded time with
    the breaker's reason, how many students were not attempted and the elapsed time; no row,
    no per-student materialization."""
    with HungEndpoint() as hung, dg.instance_for_test() as instance:
        store = ReportStoreResource(
            bucket="reports",
            endpoint_url=hung.url,
            connect_timeout=1.0,
            read_timeout=1.0,
            file_deadline_seconds=6.0,
            breaker_failures=3,
        )
        t0 = time.perf_counter()
        result = dg.materialize(
            [report_artifacts],
            resources={"warehouse": WarehouseResource(database_url=url), "report_store": store},
            instance=instance,
            partition_key=latest,
            raise_on_error=False,
        )
        elapsed = time.perf_counter() - t0
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        info = failure.step_failure_data.user_failure_data
        assert instance.get_materialized_partitions(STUDENT_REPORTS) == set()
    print(f"\nasset against a hung store: failed in {elapsed:.1f} s: {info.description}")
    assert elapsed < 60, elapsed  # measured ~13 s (6 students, one process: 3 x ~4 s)
    # 6 students in one process, in text order (1, 100, 2, ...): 1 (html, pdf) and 100 (html)
    # time out -> judged down; the rest of 100 and students 2, 3, 4, 5 are not attempted.
    assert info.description.startswith(
        f"Store judged down after 3 consecutive timeouts or connection failures to {hung.url}: "
        "4 of 6 students not attempted (not rendered, not uploaded); 6 of 6 failed in all, "
        "after "
    )
    assert "Check the store" in info.description and "Failed: 1, 100, 2, 3, 4, 5." in (
        info.description
    )
    meta = {k: v.value for k, v in info.metadata.items()}
    assert meta["store_judged_down"] is True and meta["students_not_attempted"] == 4
    assert meta["students_failed"] == 6 and meta["rows_recorded"] == 0
    assert meta["uploads_unanswered"] == 3 and meta["breaker_failures"] == 3
    assert meta["stop_reason"].startswith("store judged down after 3 consecutive")
    assert 0 < meta["seconds_total"] < 60
    assert meta["time_budget_seconds"] == 606  # 600 s + 1 s per student
    assert count_rows(url) == 0


def test_store_settings_from_the_environment(monkeypatch):
    for env, value in {
        "S3_BUCKET": "b",
        "S3_CONNECT_TIMEOUT_SECONDS": "2",
        "S3_READ_TIMEOUT_SECONDS": "4.5",
        "S3_FILE_DEADLINE_SECONDS": "20",
        "S3_MAX_ATTEMPTS": "2",
        "REPORT_STORE_BREAKER_FAILURES": "5",
        "REPORT_BATCH_BUDGET_SECONDS": "900",
    }.items():
        monkeypatch.setenv(env, value)
    resource = report_store_from_env()
    st = resource.process_config_and_initialize().store_settings()  # EnvVars resolved
    assert (st.bucket, st.connect_timeout, st.read_timeout) == ("b", 2.0, 4.5)
    assert (st.file_deadline, st.max_attempts, st.breaker_failures) == (20.0, 2, 5)
    assert resource.batch_budget_seconds == 900.0
    monkeypatch.setenv("S3_READ_TIMEOUT_SECONDS", "ten")
    with pytest.raises(ValueError, match="S3_READ_TIMEOUT_SECONDS"):
        report_store_from_env()
    defaults = ReportStoreResource().store_settings()
    assert (defaults.connect_timeout, defaults.read_timeout, defaults.max_attempts) == (3, 10, 3)
    assert (defaults.file_deadline, defaults.breaker_failures) == (30, 3)


def test_rerender_one_student(url, latest, tmp_path):
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(users.name, ["2", "6", "999"])
        result = dg.materialize(
            [student_report_artifacts],
            resources=resources(url, home),
            instance=instance,
            partition_key="6",  # not active this week: re-rendering works all the same
            run_config=run_config("student__report_artifacts", week_start=latest),
        )
        meta = result.asset_materializations_for_node("student__report_artifacts")[0].metadata
        assert meta["students_succeeded"].value == 1
        assert meta["pdf_key"].value == f"reports/{latest}/6.pdf"
        assert meta["pdf_bytes"].value > 1000
        missing = dg.materialize(
            [student_report_artifacts],
            resources=resources(url, home),
            instance=instance,
            partition_key="999",
            raise_on_error=False,
        )
        assert not missing.success
    assert count_rows(url) == 2


def test_schedule_targets_the_week_that_just_ended(monkeypatch):
    monkeypatch.delenv("SEEDTEST_REPORT_SHARDS", raising=False)
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 23, 4, tzinfo=UTC))
    [req] = report_artifacts_schedule(ctx)
    assert req.partition_key == "2026-11-16" and req.run_key == "reports-2026-11-16"
    assert report_artifacts_schedule.cron_schedule == "0 4 * * 1"
    assert report_artifacts_schedule.execution_timezone == "UTC"


def test_sharded_schedule_fans_the_week_out_and_the_shards_cover_it_once(
    url, latest, tmp_path, monkeypatch
):
    """SEEDTEST_REPORT_SHARDS=3: three run requests whose configs, materialized, store every
    student's report exactly once (what three pods would do)."""
    monkeypatch.setenv("SEEDTEST_REPORT_SHARDS", "3")
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 23, 4, tzinfo=UTC))
    reqs = report_artifacts_schedule(ctx)
    assert [r.partition_key for r in reqs] == ["2026-11-16"] * 3
    assert len({r.run_key for r in reqs}) == 3
    monkeypatch.setenv("SEEDTEST_REPORT_SHARDS", "0")
    with pytest.raises(ValueError, match="SEEDTEST_REPORT_SHARDS"):
        report_artifacts_schedule(ctx)

    home = tmp_path / "home"
    shards = []
    with dg.instance_for_test() as instance:
        for req in reqs:
            result = dg.materialize(
                [report_artifacts],
                resources=resources(url, home),
                instance=instance,
                partition_key=latest,
                run_config=req.run_config,
            )
            assert result.success
            [mat] = result.asset_materializations_for_node("report_artifacts")
            shards.append({k: v.value for k, v in mat.metadata.items()})
    assert [m["shard"] for m in shards] == ["1/3", "2/3", "3/3"]
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.report_artifacts.c.user_id, func.count()).group_by(
                s.report_artifacts.c.user_id
            )
        ).all()
        lo = datetime.fromisoformat(latest)
        active = conn.execute(
            select(func.count(func.distinct(s.attempts.c.user_id))).where(
                s.attempts.c.attempted_at >= lo, s.attempts.c.attempted_at < lo + timedelta(days=7)
            )
        ).scalar_one()
    engine.dispose()
    # Every active student once per format (html + pdf), no student twice.
    assert len(rows) == active == sum(m["students_selected"] for m in shards)
    assert {n for _, n in rows} == {2}


def test_definitions_wire_the_assets_schedule_and_store():
    from seedtest_assets.definitions import build_defs

    defs = build_defs()

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert {dg.AssetKey("report_artifacts"), STUDENT_REPORTS} <= keys
    assert defs.resolve_schedule_def("report_artifacts_schedule")
    assert isinstance(defs.resources["report_store"], ReportStoreResource)
