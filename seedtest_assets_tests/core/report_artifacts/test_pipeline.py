"""The weekly batch on SQLite: selection, dry run, recording, S3 with a failure mid-batch, a
hung store (the breaker), a store that hangs then recovers, the time budget."""

import hashlib
import time
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest
from sqlalchemy import select

from seedtest_assets.core.report_artifacts.pipeline import (
    Selection,
    run_batch,
    select_students,
    stored_artifacts,
)
from seedtest_assets.core.report_artifacts.store import StoreSettings
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.report_helpers import (
    HANG,
    WEEK,
    FaultProxy,
    HungEndpoint,
    seed_week,
)

NOW = datetime(2026, 3, 9, 4, 0)


@pytest.fixture
def week_url(sqlite_url) -> str:
    seed_week(sqlite_url, n_users=6)
    return sqlite_url


def ids(engine, selection) -> list[int]:
    return select_students(engine, WEEK, selection).frame["user_id"].to_list()


def artifact_rows(engine):
    with engine.connect() as conn:
        return read_frame(conn, select(s.report_artifacts).order_by("user_id", "format"))


def test_selection_options(week_url, monkeypatch):
    engine = make_engine(week_url)
    # Ids are text: in text order ("100" before "2"); student 6 was not active.
    assert ids(engine, Selection()) == ["1", "100", "2", "3", "4", "5"]
    assert ids(engine, Selection(org_ids=("2",))) == ["100"]
    assert ids(engine, Selection(user_ids=("2", "6"))) == ["2"]
    assert ids(engine, Selection(user_ids=("2", "6"), active_only=False)) == ["2", "6"]
    assert ids(engine, Selection(active_only=False)) == ["1", "100", "2", "3", "4", "5", "6"]
    cut = select_students(engine, WEEK, Selection(max_users=3))
    assert cut.frame["user_id"].to_list() == ["1", "100", "2"] and cut.eligible == 6
    assert cut.truncated == 3
    monkeypatch.setenv("MAX_USERS", "2")
    assert ids(engine, Selection()) == ["1", "100"]
    monkeypatch.delenv("MAX_USERS")
    # A hostile "cohort" is just a value: no SQL text is ever built from options.
    assert ids(engine, Selection(org_ids=("1",), user_ids=("1",))) == ["1"]
    assert ids(engine, Selection(org_ids=("1' OR '1'='1",))) == []
    with pytest.raises(ValueError, match="Monday"):
        select_students(engine, WEEK + timedelta(days=1), Selection())
    with pytest.raises(ValueError, match="max_users"):
        Selection(max_users=0).limit()
    engine.dispose()


def test_shards_partition_the_selection_after_the_max_users_cut(week_url):
    engine = make_engine(week_url)
    whole = ids(engine, Selection(max_users=5))
    assert whole == ["1", "100", "2", "3", "4"]
    parts = [
        select_students(engine, WEEK, Selection(max_users=5, shard_count=3, shard_index=i))
        for i in range(3)
    ]
    got = [p.frame["user_id"].to_list() for p in parts]
    # crc32(user_id) % 3: disjoint, together the whole cut.
    assert got == [["100"], ["2", "3", "4"], ["1"]]
    assert sorted(u for g in got for u in g) == whole
    # The cut counts all shards, not the students in other shards.
    assert {(p.eligible, p.kept, p.truncated) for p in parts} == {(6, 5, 1)}
    for bad in ((0, 0), (2, 2), (2, -1)):
        with pytest.raises(ValueError, match="shard"):
            Selection(shard_count=bad[0], shard_index=bad[1])
    engine.dispose()


def test_dry_run_renders_everything_and_writes_nothing(week_url, tmp_path):
    engine = make_engine(week_url)
    result = run_batch(engine, WEEK, Selection(), store=None, now=NOW)
    assert result.dry_run and result.selected == 6 and not result.failures
    assert len(result.artifacts) == 12 and all(
        a.size > 1000 and not a.url for a in result.artifacts
    )
    assert result.recorded == 0 and artifact_rows(engine).height == 0
    # Only the warehouse file (and SQLite's journal files) in the test folder.
    assert {p.name for p in tmp_path.iterdir()} <= {
        "warehouse.db",
        "warehouse.db-wal",
        "warehouse.db-shm",
    }
    engine.dispose()


def test_local_batch_records_size_and_checksum_and_rerun_replaces(week_url, tmp_path):
    engine = make_engine(week_url)
    store = StoreSettings(local_dir=str(tmp_path / "home"))
    first = run_batch(engine, WEEK, Selection(), store=store, now=NOW, formats=["html", "pdf"])
    assert first.recorded == 12 and not first.failures and first.route == "pandoc"
    rows = artifact_rows(engine)
    assert rows.height == 12 and set(rows["format"]) == {"html", "pdf"}
    for r in rows.iter_rows(named=True):
        path = Path(r["url"].removeprefix("file://"))
        assert path == tmp_path / "home/reports/2026-03-02" / f"{r['user_id']}.{r['format']}"
        body = path.read_bytes()
        assert r["file_size_bytes"] == len(body)
        assert r["sha256"] == hashlib.sha256(body).hexdigest()
    later = NOW + timedelta(hours=1)
    again = run_batch(engine, WEEK, Selection(user_ids=("1", "2")), store=store, now=later)
    assert again.recorded == 4
    rows = artifact_rows(engine)
    assert rows.height == 12  # replaced, not duplicated
    listed = stored_artifacts(engine, WEEK)
    assert listed.height == 12 and listed["user_id"].to_list()[:2] == ["1", "1"]
    later_ids = rows.filter(rows["generated_at"] == later)["user_id"].to_list()
    assert sorted(later_ids) == ["1", "1", "2", "2"]
    engine.dispose()


@pytest.mark.slow
def test_s3_batch_with_a_failure_mid_batch_then_a_rerun_completes(
    sqlite_url, moto_endpoint, bucket
):
    """20 students over 2 worker processes; student 7's PDF upload keeps failing (HTTP 500)."""
    seed_week(sqlite_url, n_users=20)
    engine = make_engine(sqlite_url)
    broken = {"on": True}
    bad_key = f"/{bucket}/reports/2026-03-02/7.pdf"

    def rule(method, path):
        return 500 if broken["on"] and method == "PUT" and path == bad_key else None

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="ap-northeast-2")
    with FaultProxy(moto_endpoint, rule) as proxy:
        store = StoreSettings(bucket=bucket, endpoint_url=proxy.url, max_attempts=2)
        first = run_batch(engine, WEEK, Selection(), store=store, now=NOW, workers=2)
        assert first.selected == 20
        assert first.failed_users == ["7"]
        assert [(u, f) for u, f, _ in first.failures] == [("7", "pdf")]
        assert "InternalError" in first.failures[0][2]
        assert proxy.hits[("PUT", bad_key)] == 2  # retried, then gave up
        rows = artifact_rows(engine)
        assert rows.height == 39 and first.recorded == 39
        assert rows.filter((rows["user_id"] == 7) & (rows["format"] == "pdf")).height == 0
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        assert len(keys) == 39 and "reports/2026-03-02/7.pdf" not in keys
        # Every recorded row points at an object with that size and checksum.
        for r in rows.iter_rows(named=True):
            key = f"reports/2026-03-02/{r['user_id']}.{r['format']}"
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert len(body) == r["file_size_bytes"]
            assert hashlib.sha256(body).hexdigest() == r["sha256"]
            assert "X-Amz-Signature=" in r["url"]

        broken["on"] = False  # the outage ends: a re-run completes the batch
        second = run_batch(engine, WEEK, Selection(), store=store, now=NOW, workers=2)
        assert not second.failures and second.recorded == 40
    assert artifact_rows(engine).height == 40
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 40
    engine.dispose()


#: Hung-store timeouts for tests: an upload attempt on a silent socket takes ~2 s (1 s for
#: botocore's 100-continue wait, 1 s read timeout); the 6 s deadline allows two per file.
FAST = {"connect_timeout": 1.0, "read_timeout": 1.0, "file_deadline": 6.0, "breaker_failures": 3}


@pytest.mark.slow
def test_s3_batch_against_a_hung_store_fails_fast_then_a_rerun_completes(
    sqlite_url, moto_endpoint, bucket
):
    """20 students over 2 worker processes; the endpoint accepts connections and never answers.
    The breaker trips after 3 consecutive unanswered uploads; every other student fails at once,
    not rendered, not uploaded; no row. Once the store is back, a re-run completes the week."""
    seed_week(sqlite_url, n_users=20)
    engine = make_engine(sqlite_url)
    with HungEndpoint() as hung:
        store = StoreSettings(bucket=bucket, endpoint_url=hung.url, **FAST)
        t0 = time.perf_counter()
        first = run_batch(engine, WEEK, Selection(), store=store, now=NOW, workers=2)
        elapsed = time.perf_counter() - t0
        connections = hung.accepted
    print(f"\nhung store, 20 students, 2 workers: failed in {elapsed:.1f} s; {first.seconds}")
    assert elapsed < 60, elapsed  # a guard against hanging; measured ~12 s
    assert first.selected == 20 and first.store_down and not first.budget_spent
    assert first.failed_users == sorted(first.failed_users) and len(first.failed_users) == 20
    reason = f"store judged down after 3 consecutive timeouts or connection failures to {hung.url}"
    assert first.stop_reason == reason
    tried = [a for a in first.artifacts if a.attempted]
    skipped = [a for a in first.artifacts if not a.attempted]
    # The 3 that tripped it, plus at most one in flight in the other worker.
    assert 3 <= len(tried) <= 4 and all(a.unreachable and not a.ok for a in tried)
    assert all(a.error.startswith("upload: StoreDeadlineExceeded") for a in tried[:3])
    assert {a.error for a in skipped} == {f"{reason}: not attempted"}
    assert len(tried) + len(skipped) == 40  # every file of every student has a result
    assert len(first.not_attempted_users) >= 17
    assert connections <= 2 * len(tried)  # two attempts a file, none for the rest
    assert first.recorded == 0 and artifact_rows(engine).height == 0

    # The store is back: the same batch completes and records every file.
    again = StoreSettings(bucket=bucket, endpoint_url=moto_endpoint, **FAST)
    second = run_batch(engine, WEEK, Selection(), store=again, now=NOW, workers=2)
    assert not second.failures and not second.stop_reason and second.recorded == 40
    assert artifact_rows(engine).height == 40
    engine.dispose()


@pytest.mark.slow
def test_s3_store_that_hangs_for_the_first_requests_then_recovers_completes(
    sqlite_url, moto_endpoint, bucket
):
    """The first 4 uploads are held without an answer (a proxy in front of moto): the files
    retry within their deadline and the batch completes; the breaker does not trip."""
    seed_week(sqlite_url, n_users=20)
    engine = make_engine(sqlite_url)
    held = {"left": 4}

    def rule(method, path):
        if method == "PUT" and held["left"] > 0:
            held["left"] -= 1
            return HANG
        return None

    with FaultProxy(moto_endpoint, rule) as proxy:
        store = StoreSettings(bucket=bucket, endpoint_url=proxy.url, **FAST)
        t0 = time.perf_counter()
        result = run_batch(engine, WEEK, Selection(), store=store, now=NOW, workers=2)
        elapsed = time.perf_counter() - t0
        assert proxy.hung == 4
    print(f"\nstore hung for 4 requests, then recovered: {elapsed:.1f} s")
    assert elapsed < 60, elapsed
    assert not result.failures and not result.store_down and result.recorded == 40
    rows = artifact_rows(engine)
    assert rows.height == 40
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="ap-northeast-2")
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 40
    engine.dispose()


def test_time_budget_fails_the_students_not_started(week_url, tmp_path):
    """A budget already used up when rendering would start: nobody is rendered or stored."""
    engine = make_engine(week_url)
    store = StoreSettings(local_dir=str(tmp_path / "home"))
    result = run_batch(engine, WEEK, Selection(), store=store, now=NOW, time_budget_seconds=1e-6)
    assert result.budget_spent and not result.store_down
    assert result.stop_reason == "batch time budget of 1e-06 s used up"
    assert result.not_attempted_users == result.failed_users == ["1", "100", "2", "3", "4", "5"]
    assert {e for _, _, e in result.failures} == {
        "batch time budget of 1e-06 s used up: not attempted"
    }
    assert result.recorded == 0 and artifact_rows(engine).height == 0
    assert not (tmp_path / "home").exists()
    # The default grows with the batch: 600 s + 1 s per student.
    ok = run_batch(engine, WEEK, Selection(), store=store, now=NOW)
    assert ok.time_budget_seconds == 606 and not ok.failures and ok.recorded == 12
    engine.dispose()
