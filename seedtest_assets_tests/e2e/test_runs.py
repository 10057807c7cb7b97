"""End to end: the operator workflows of the issue, through the GraphQL API the UI uses, against
the real ``dagster-webserver`` + ``dagster-daemon`` on PostgreSQL instance storage (the
production ``deploy/dagster.yaml``) and a PostgreSQL warehouse.

1. Materialize one partition: it succeeds and its rows match counts computed in SQL.
2. Backfill the past 3 complete weeks with their daily upstream: every partition is
   materialized exactly once and the warehouse holds each week once; the number of runs is
   compared with ADR 0001's prediction (Amendment 2).
3. Kill a run mid-write (the run is retried automatically), and force-terminate a hung run
   (the operator re-launches it): never a partial or duplicated partition, then the full
   expected rows.
4. Kill the daemon while a backfill run is in flight and another run is queued, restart it:
   both finish, every partition materialized exactly once, no extra run.

Every count is compared with SQL over the raw ``attempts`` (or, for KPIs, the stored
features), never with what the pipeline reports about itself. Mid-write states are made
deterministic with PostgreSQL locks: a row held ``FOR UPDATE`` stops a partition's replace
inside its transaction (after its ``DELETE`` started), and a ``SHARE`` table lock keeps the
next writer out while the committed state is inspected.

Measured wall time of the module on 2 cores: about 4.5 minutes, 3 of them the backfill of
test 2 (10 runs in 5 dependency waves; Dagster's backfill daemon iterates every 30 s).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from seedtest_assets_tests.dagster_servers import carries_marker, wait_for
from seedtest_assets_tests.e2e.conftest import OpsStack, _ppid, day_bounds, pid_alive, tag

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FEATURES = "features_topic_daily"
WEEKLY = ["mirt_item_params", "mirt_ability", "topic_ability", "weekly_kpi", "report_artifacts"]
#: Natural key of each output table (``mirt_ability``'s weekly rows have no unique constraint:
#: the duplicate check is the only thing that would catch a double write there).
NATURAL_KEYS = {
    "features_topic_daily": ("date, user_id, topic_id", "true"),
    "weekly_kpi": ("week_start, user_id", "true"),
    "mirt_item_params": ("week_start, model, item_id", "true"),
    "mirt_ability": ("week_start, user_id", "source = 'weekly'"),
    "topic_ability": ("week_start, user_id, topic_id", "true"),
    "report_artifacts": ("week_start, user_id, format", "true"),
    "attempt_rejects": ("partition_date, attempt_id, reason", "true"),
}


# --------------------------------------------------------------------------- expectations
def duplicate_keys(stack: OpsStack, table: str) -> int:
    """Natural keys present more than once in ``table`` (must be 0)."""
    keys, where = NATURAL_KEYS[table]
    return stack.scalar(
        f"SELECT count(*) FROM (SELECT {keys} FROM {table} WHERE {where} "  # our constants
        f"GROUP BY {keys} HAVING count(*) > 1) d"
    )


def expected_feature_rows(stack: OpsStack, day: date) -> tuple[int, int]:
    """(student x topic pairs, attempts) of ``day`` counted over the raw attempts."""
    b = day_bounds(day)
    pairs = stack.scalar(
        "SELECT count(*) FROM (SELECT DISTINCT user_id, topic_id FROM attempts "
        "WHERE attempted_at >= :lo AND attempted_at < :hi) d",
        **b,
    )
    attempts = stack.scalar(
        "SELECT count(*) FROM attempts WHERE attempted_at >= :lo AND attempted_at < :hi", **b
    )
    return pairs, attempts


def stored_feature_rows(stack: OpsStack, day: date) -> tuple[int, int]:
    """(rows, summed attempts) stored for ``day``."""
    row = stack.rows(
        "SELECT count(*), coalesce(sum(attempts), 0) FROM features_topic_daily WHERE date = :d",
        d=day,
    )[0]
    return int(row[0]), int(row[1])


#: ADR 0001 Amendments 3 and 4: the runs one week of the weekly assets takes in a backfill.
#: The week's five assets (Amendment 4 added topic_ability, between calibration and the
#: reports) depend on each other partition for partition (identity mappings) and only
#: calibration reads its own previous week, so a backfill of weeks alone runs each week as one
#: run, after the previous week's (measured: exactly k runs for k weeks, the UI test). When
#: the same backfill also targets the weeks' days, the KPIs wait for the day run while
#: calibration, scoring and topic θ need not, and how the daemon groups a week's assets then
#: varies with timing: 1 to 5 runs per week, at most one per asset (measured 8, 10 and 12 runs
#: for 3 weeks + days with the four assets before topic_ability; not re-measured since).
#: (Amendment 2 measured exactly 3 per week while the KPIs read a -1..0 window of abilities.)
WEEK_RUN_GROUPS = (
    {"mirt_item_params", "mirt_ability", "topic_ability", "weekly_kpi", "report_artifacts"},
)
#: At most this many runs per week when the days are in the same backfill.
MAX_RUNS_PER_WEEK_WITH_DAYS = len(WEEK_RUN_GROUPS[0])


def predicted_runs(selection: dict[str, int]) -> int:
    """Runs a backfill of ``selection`` (asset -> number of partitions) creates, by ADR 0001's
    rules: weekly assets take one run per week per group of :data:`WEEK_RUN_GROUPS` they touch
    (Amendment 2); the other assets sharing a partitions definition and a backfill policy run
    together, ``single_run`` as one run per contiguous range, ``multi_run(k)`` one per k."""
    from seedtest_assets.definitions import build_defs

    defs = build_defs()

    graph = defs.resolve_asset_graph()
    groups: dict[tuple[str, int | None], set[int]] = {}
    weekly = {a: n for a, n in selection.items() if any(a in g for g in WEEK_RUN_GROUPS)}
    if weekly:
        assert len(set(weekly.values())) == 1, f"one week range expected, got {weekly}"
        touched = sum(1 for g in WEEK_RUN_GROUPS if g & set(weekly))
        total_weekly = touched * next(iter(weekly.values()))
    else:
        total_weekly = 0
    for name, n in selection.items():
        if name in weekly:
            continue
        node = graph.get(dg.AssetKey(name.split("/")))
        per_run = node.backfill_policy.max_partitions_per_run  # None = single_run
        groups.setdefault((str(node.partitions_def), per_run), set()).add(n)
    total = 0
    for (_, per_run), sizes in groups.items():
        assert len(sizes) == 1, f"one range per group expected, got {sizes}"
        total += 1 if per_run is None else math.ceil(sizes.pop() / per_run)
    return total + total_weekly


def materialized_once(
    stack: OpsStack, asset: str, keys: list[str], run_ids: set[str]
) -> dict[str, int]:
    """Materializations of each key by the runs ``run_ids`` (as the UI lists them)."""
    mats = stack.materializations(asset, keys)
    return dict(Counter(m["partition"] for m in mats if m["runId"] in run_ids))


# --------------------------------------------------------------------------- 1. one partition
def test_materialize_one_partition_from_the_ui(ops_stack: OpsStack):
    """Workflow 1: "Materialize" on one day of ``features_topic_daily`` (the UI's own requests)
    runs to SUCCESS; the day's rows are exactly the student x topic pairs of that day's raw
    attempts, their attempts add up to the day's attempts, written once by this run, the UI
    shows this run's materialization (with the same row count) and passing checks, and no
    other day was touched.

    Independent of what ran before in the module's shared stack: the day may already be
    stored (a rerun, or another test that touched it), so only this run's write,
    materialization and check evaluations are counted."""
    stack = ops_stack
    day = stack.week(0) + timedelta(days=2)
    other_before = stack.rows(
        "SELECT date, count(*), max(computed_at) FROM features_topic_daily "
        "WHERE date <> :d GROUP BY date ORDER BY date",
        d=day,
    )
    before = day_snapshot(stack, day)  # (0, 0, 0, None, ...) unless the day was written before

    run_id = stack.materialize(FEATURES, day.isoformat())
    run = stack.wait_run(run_id)
    assert run["status"] == "SUCCESS", stack.servers.log_tail("daemon")
    assert tag(run, "dagster/partition") == day.isoformat()
    assert [a["path"] for a in run["assetSelection"]] == [[FEATURES]]

    pairs, attempts = expected_feature_rows(stack, day)
    assert pairs > 20  # a real day of activity, not an empty partition
    after = day_snapshot(stack, day)
    # The complete set, from one write (one computed_at), and that write is this run's.
    assert after[:3] == (pairs, attempts, 1), (before, after)
    assert before[3] is None or after[3] > before[3], (before, after)
    assert (
        stack.scalar("SELECT count(*) FROM attempt_rejects WHERE partition_date = :d", d=day) == 0
    )
    assert duplicate_keys(stack, FEATURES) == 0
    assert (
        stack.rows(
            "SELECT date, count(*), max(computed_at) FROM features_topic_daily "
            "WHERE date <> :d GROUP BY date ORDER BY date",
            d=day,
        )
        == other_before
    )

    # What the UI shows: the partition's materialization by this run, and its checks.
    [mat] = [m for m in stack.materializations(FEATURES, [day.isoformat()]) if m["runId"] == run_id]
    meta = {e["label"]: e.get("intValue") for e in mat["metadataEntries"]}
    assert meta["feature_rows"] == pairs and meta["source_rows"] == attempts
    # (Dagster 1.13.27 also leaves a per-partition PLANNED record of each check, resolved as
    # SKIPPED, next to the evaluation: see the e2e report; only the evaluation is asserted.)
    for check in ("attempts_reconcile", "values_in_range"):
        ran = [e["status"] for e in stack.check_executions(FEATURES, check) if e["runId"] == run_id]
        assert "SUCCEEDED" in ran and "FAILED" not in ran, (check, ran)


# --------------------------------------------------------------------------- 2. backfill
def backfill_by_asset(days: list[str], weeks: list[str], weekly: list[str]) -> list[dict]:
    """``partitionsByAssets`` for a day range of ``features_topic_daily`` and a week range of
    ``weekly`` assets (what the ADR spike sent)."""
    return [
        {
            "assetKey": {"path": [FEATURES]},
            "partitions": {"range": {"start": days[0], "end": days[-1]}},
        }
    ] + [
        {"assetKey": {"path": [a]}, "partitions": {"range": {"start": weeks[0], "end": weeks[-1]}}}
        for a in weekly
    ]


def describe(runs: list[dict]) -> str:
    out = []
    for r in sorted(runs, key=lambda r: r["startTime"] or 0):
        assets = "+".join(sorted("/".join(a["path"]) for a in r["assetSelection"]))
        lo = tag(r, "dagster/asset_partition_range_start") or tag(r, "dagster/partition")
        hi = tag(r, "dagster/asset_partition_range_end") or lo
        secs = (r["endTime"] or 0) - (r["startTime"] or 0)
        out.append(f"{r['status']:8} {secs:5.1f} s  {assets} [{lo}..{hi}]")
    return "\n".join(out)


def check_backfill_outcome(
    stack: OpsStack, backfill: dict, runs: list[dict], selection: dict[str, list[str]]
) -> None:
    """Every partition of ``selection`` (asset -> keys) targeted, materialized exactly once by
    the backfill's runs, all runs succeeded, and no run mixes weeks or days it was not asked."""
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    statuses = {
        "/".join(s["assetKey"]["path"]): s
        for s in backfill["assetBackfillData"]["assetBackfillStatuses"]
    }
    assert set(statuses) == set(selection)
    for asset, keys in selection.items():
        s = statuses[asset]
        n = len(keys)
        assert (s["numPartitionsTargeted"], s["numPartitionsMaterialized"]) == (n, n), s
        assert (s["numPartitionsFailed"], s["numPartitionsInProgress"]) == (0, 0), s
    assert runs and all(r["status"] == "SUCCESS" for r in runs), describe(runs)
    run_ids = {r["runId"] for r in runs}
    for asset, keys in selection.items():
        assert materialized_once(stack, asset, keys, run_ids) == dict.fromkeys(keys, 1), asset
    # One daily run over the whole day range (single_run); weekly runs cover one week each.
    daily = [r for r in runs if [a["path"] for a in r["assetSelection"]] == [[FEATURES]]]
    assert len(daily) == 1, describe(runs)
    days = selection[FEATURES]
    assert tag(daily[0], "dagster/asset_partition_range_start") == days[0]
    assert tag(daily[0], "dagster/asset_partition_range_end") == days[-1]
    for r in runs:
        if r in daily:
            continue
        lo = tag(r, "dagster/asset_partition_range_start") or tag(r, "dagster/partition")
        hi = tag(r, "dagster/asset_partition_range_end") or lo
        assert lo == hi, f"a weekly run spans several weeks: {describe([r])}"
        # weekly_kpi reads the week's days: it never ran before the daily run ended.
        if ["weekly_kpi"] in [a["path"] for a in r["assetSelection"]]:
            assert r["startTime"] >= daily[0]["endTime"], describe(runs)


def test_backfill_three_weeks_with_daily_upstream(ops_stack: OpsStack):
    """Workflow 2: a backfill of the past 3 complete weeks of the 5 weekly assets with the 21
    days of ``features_topic_daily`` they read (``launchPartitionBackfill`` with
    ``partitionsByAssets``, as the ADR spike did) completes; every requested partition of every
    asset is materialized exactly once and all runs succeed; each week's rows exist once and
    match counts computed independently in SQL; and the number of runs is the one ADR 0001
    predicts: 1 run over the 21 days, then 1 to 5 per week (a week's five assets together,
    or split while the KPIs wait for the days), 4 to 16 in all (Amendments 3 and 4; Amendment 2
    measured exactly 10 while the KPIs also read the previous week's abilities; the UI test
    backfills weeks without their days and gets exactly 1 per week)."""
    stack = ops_stack
    weeks = [w.isoformat() for w in stack.complete_weeks(3)]
    start = date.fromisoformat(weeks[0])
    days = [(start + timedelta(days=i)).isoformat() for i in range(21)]
    selection = {FEATURES: days, **dict.fromkeys(WEEKLY, weeks)}
    predicted = predicted_runs({a: len(keys) for a, keys in selection.items()})
    assert predicted == 4  # the ADR's table, case (d): the fewest (Amendment 3)
    most = 1 + MAX_RUNS_PER_WEEK_WITH_DAYS * len(weeks)

    backfill_id = stack.launch_backfill(
        {"partitionsByAssets": backfill_by_asset(days, weeks, WEEKLY)}
    )
    backfill = stack.wait_backfill(backfill_id, timeout=420)
    runs = stack.runs({"dagster/backfill": backfill_id})
    print(
        f"\nbackfill of 3 weeks: {len(runs)} runs (ADR 0001 predicts {predicted})\n{describe(runs)}"
    )
    check_backfill_outcome(stack, backfill, runs, selection)

    # The warehouse: every day and week present once, with independently computed counts.
    for table in NATURAL_KEYS:
        assert duplicate_keys(stack, table) == 0, table
    for day in days:
        d = date.fromisoformat(day)
        assert stored_feature_rows(stack, d) == expected_feature_rows(stack, d), day
    for week in map(date.fromisoformat, weeks):
        end = week + timedelta(days=7)
        window = {"lo": end - timedelta(weeks=12), "hi": end}  # calibration/scoring window
        in_window = "FROM attempts WHERE attempted_at >= :lo AND attempted_at < :hi"
        expected = {
            "mirt_item_params": stack.scalar(
                f"SELECT count(DISTINCT item_id) {in_window}", **window
            ),
            "mirt_ability": stack.scalar(f"SELECT count(DISTINCT user_id) {in_window}", **window),
            # every (student, topic) of the window with an answer to an unflagged item of the
            # week's calibration
            "topic_ability": stack.scalar(
                "SELECT count(*) FROM (SELECT DISTINCT a.user_id, a.topic_id FROM attempts a "
                "JOIN mirt_item_params p ON p.item_id = a.item_id AND p.week_start = :w "
                "AND p.model = '2PL' AND NOT coalesce((p.params->>'flagged')::boolean, false) "
                "WHERE a.attempted_at >= :lo AND a.attempted_at < :hi) d",
                w=week,
                **window,
            ),
            # everyone with an active day (stored features) in the 4 weeks up to the week's end
            "weekly_kpi": stack.scalar(
                "SELECT count(DISTINCT user_id) FROM features_topic_daily "
                "WHERE date >= :lo AND date < :hi",
                lo=end - timedelta(weeks=4),
                hi=end,
            ),
            # HTML + PDF for every student active in the week
            "report_artifacts": 2
            * stack.scalar(f"SELECT count(DISTINCT user_id) {in_window}", lo=week, hi=end),
        }
        got = {
            t: stack.scalar(f"SELECT count(*) FROM {t} WHERE week_start = :w AND {where}", w=week)
            for t, (_, where) in NATURAL_KEYS.items()
            if t in WEEKLY
        }
        assert got == expected and min(got.values()) > 0, week

    assert predicted <= len(runs) <= most, (
        f"{len(runs)} runs, ADR 0001 predicts {predicted} to {most}:\n{describe(runs)}"
    )


# --------------------------------------------------------------------------- 3. kill / hang
def day_snapshot(stack: OpsStack, day: date) -> tuple:
    """The stored rows of ``day``: count, summed attempts, distinct ``computed_at`` (one per
    write), the latest one, and a checksum of the keys and attempts (equal = same content)."""
    return tuple(
        stack.rows(
            "SELECT count(*), coalesce(sum(attempts), 0), count(DISTINCT computed_at), "
            "max(computed_at), md5(coalesce(string_agg(user_id || ':' || topic_id || ':' || "
            "attempts, ',' ORDER BY user_id, topic_id), '')) "
            "FROM features_topic_daily WHERE date = :d",
            d=day,
        )[0]
    )


def ensure_materialized(stack: OpsStack, day: date) -> tuple:
    """The day's complete rows (materialized now through the UI path if none are stored)."""
    if stored_feature_rows(stack, day)[0] == 0:
        run = stack.wait_run(stack.materialize(FEATURES, day.isoformat()))
        assert run["status"] == "SUCCESS", run
    snap = day_snapshot(stack, day)
    assert snap[:2] == expected_feature_rows(stack, day) and snap[2] == 1, snap
    return snap


def add_late_attempts(stack: OpsStack, day: date, students: int = 6) -> int:
    """Late attempts for ``day`` by students who had none that day, on 2 topics each, so that
    the day's next complete write differs from the stored one; returns the pairs added."""
    users = [
        u
        for (u,) in stack.rows(
            "SELECT user_id FROM users WHERE user_id NOT IN (SELECT user_id FROM attempts "
            "WHERE attempted_at >= :lo AND attempted_at < :hi AND user_id IS NOT NULL) "
            "ORDER BY user_id LIMIT :n",
            n=students,
            **day_bounds(day),
        )
    ]
    items = stack.rows(
        "SELECT DISTINCT ON (topic_id) item_id, topic_id FROM items ORDER BY topic_id, item_id "
        "LIMIT 2"
    )
    assert len(users) == students and len(items) == 2
    noon = day_bounds(day)["lo"] + timedelta(hours=12)
    with stack.engine.begin() as conn:
        next_id = conn.execute(text("SELECT max(id) + 1 FROM attempts")).scalar_one()
        for i, user in enumerate(users):
            # Text ids, as the product's: unique through this student's first attempt id.
            session = f"s-e2e-{next_id + 2 * i}"
            conn.execute(
                text(
                    "INSERT INTO exam_sessions (session_id, user_id, started_at, completed_at) "
                    "VALUES (:s, :u, :t, :t2)"
                ),
                {"s": session, "u": user, "t": noon, "t2": noon + timedelta(minutes=3)},
            )
            for j, (item, topic) in enumerate(items):
                conn.execute(
                    text(
                        "INSERT INTO attempts (id, user_id, session_id, item_id, topic_id, "
                        "is_correct, response_time_ms, hints_used, attempted_at) "
                        "VALUES (:id, :u, :s, :item, :topic, true, 30000, 0, :t)"
                    ),
                    {
                        "id": next_id + 2 * i + j,
                        "u": user,
                        "s": session,
                        "item": item,
                        "topic": topic,
                        "t": noon + timedelta(minutes=j + 1),
                    },
                )
    return 2 * students


@contextlib.contextmanager
def holding_last_row(stack: OpsStack, day: date) -> Iterator[None]:
    """Hold the day's last row (in key order) ``FOR UPDATE``: a run replacing the day deletes
    the rows before it, inside its transaction, then waits there, mid-write."""
    with stack.engine.connect() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '180s'"))
        conn.execute(
            text(
                "SELECT 1 FROM features_topic_daily WHERE date = :d "
                "ORDER BY user_id DESC, topic_id DESC LIMIT 1 FOR UPDATE"
            ),
            {"d": day},
        ).one()
        try:
            yield
        finally:
            conn.rollback()


@contextlib.contextmanager
def share_lock_queued(stack: OpsStack, table: str) -> Iterator[Future]:
    """``LOCK TABLE ... IN SHARE MODE`` from another thread (it may have to wait): once
    granted, reads go on and every writer of ``table`` waits until the block exits."""
    conn = stack.engine.connect()
    pool = ThreadPoolExecutor(1)

    def lock() -> None:
        conn.execute(text("SET LOCAL lock_timeout = '180s'"))
        conn.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))  # our constant

    future = pool.submit(lock)
    try:
        yield future
    finally:
        with contextlib.suppress(Exception):
            future.result(timeout=200)
        conn.rollback()
        conn.close()
        pool.shutdown()


DELETE_FEATURES = f"DELETE FROM {FEATURES}"


@pytest.mark.parametrize("which", ["both", "worker", "step"])
def test_run_killed_mid_write_keeps_the_previous_rows_and_is_retried_once(
    ops_stack: OpsStack, which: str
):
    """Workflow 6, a run's processes die mid-write: a materialization of a day is held inside
    its replace transaction (its ``DELETE`` has started and waits on a row we lock), then
    ``which`` is SIGKILLed: the run worker and its step at once (a lost pod or node), the run
    worker alone (its step must die with it: before, the orphaned step committed the day and
    recorded a materialization after its run was gone), or the step alone (an OOM kill). The
    day's stored rows stay exactly the previous complete set (same content checksum) once the
    dead transaction is gone; no process of the run is left; the run is FAILURE. The daemon
    retries it once (``run_retries``: a killed process is a crash, not an asset failure, at
    every level), and the retry, itself held mid-write while we look, then writes the complete
    new set: the row count of the raw attempts' student x topic pairs (including late attempts
    added before the kill), one ``computed_at``, no duplicate key."""
    stack = ops_stack
    day = stack.complete_weeks(3)[0] + timedelta(days={"both": 3, "worker": 4, "step": 5}[which])
    before = ensure_materialized(stack, day)
    added = add_late_attempts(stack, day)
    pairs, attempts = expected_feature_rows(stack, day)
    assert pairs == before[0] + added

    with killed_mid_write(stack, day, which) as (run_id, dead_writers):
        # The killed transaction is gone and nothing of it was committed.
        assert not [p for p in dead_writers if stack.backend_alive(p)]
        assert day_snapshot(stack, day) == before
        # The code server (worker gone) or the worker (step gone) failed the run.
        killed = stack.wait_run(run_id, timeout=30)
        assert killed["status"] == "FAILURE", killed
        # The daemon retries it once; the retry starts its own replace and waits for us.
        retry = wait_for(
            lambda: [r for r in stack.runs({"dagster/parent_run_id": run_id})], 90, 0.5
        )
        assert retry and len(retry) == 1, stack.servers.log_tail("daemon")
        retry_id = retry[0]["runId"]
        assert tag(retry[0], "dagster/retry_number") == "1"
        # The retry's step starts a new process that loads the code location first: 115 s
        # for all three cases on a quiet machine, but CI once ran past 120 s for one.
        held = wait_for(lambda: stack.waiting_on_lock(DELETE_FEATURES), 300, 0.2)
        assert held, (
            [r for r in stack.runs({"dagster/parent_run_id": run_id})],
            stack.servers.log_tail("daemon"),
        )
        assert day_snapshot(stack, day) == before
    retried = stack.wait_run(retry_id)
    assert retried["status"] == "SUCCESS", stack.servers.log_tail("daemon")

    after = day_snapshot(stack, day)
    assert after[:3] == (pairs, attempts, 1) and after[3] > before[3], (before, after)
    assert duplicate_keys(stack, FEATURES) == 0
    killed = stack.run(run_id)
    assert tag(killed, "dagster/will_retry") == "true"
    assert tag(killed, "dagster/auto_retry_run_id") == retry_id
    # Exactly one retry of this run: no second run of the partition descends from it.
    later = stack.runs_for_partition(FEATURES, day.isoformat())
    assert [r["runId"] for r in later if tag(r, "dagster/root_run_id") == run_id] == [retry_id]
    # The killed run recorded no materialization of the day (its step died uncommitted).
    assert not [m for m in stack.materializations(FEATURES, [day.isoformat()])
                if m["runId"] == run_id]  # fmt: skip


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return ""


def render_worker_pids(step: int, marker: str) -> list[int]:
    """Live ``multiprocessing`` spawn children of a step that carry ``marker`` (our
    DAGSTER_HOME): its render pool (not Dagster's compute-log tailers, nor the resource
    tracker, which exits by itself once its users are gone)."""
    pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return [
        p
        for p in pids
        if _ppid(p) == step
        and pid_alive(p)
        and carries_marker(p, marker)
        and "spawn_main" in _cmdline(p)
    ]


@pytest.mark.parametrize("which", ["worker", "step"])
def test_a_killed_report_run_leaves_no_renderer_behind(ops_stack: OpsStack, which: str):
    """Workflow 6, a report run dies while it renders: once its render workers (children of
    the step) have stored the first files, the run worker or the step is SIGKILLed. Every
    render worker dies with it (before: they were orphaned for good, PPID 1, ~125 MB each, and
    went on writing files no row recorded); no file appears after the kill; the daemon retries
    the run once and the retry stores and records every student's two files, one row each."""
    stack = ops_stack
    week = stack.week({"worker": 1, "step": 2}[which])
    folder = stack.home.parent / "reports" / week.isoformat()
    marker = str(stack.home)
    # Everyone, active or not: a batch long enough (600 files) to be caught mid-way.
    students = stack.scalar("SELECT count(*) FROM users")
    run_id = stack.materialize("report_artifacts", week.isoformat(), {"active_only": False})
    renderers: list[int] = []
    try:

        def started():  # the step's pid, from the run's event log (slow: once)
            try:
                return stack.run_worker_pids(run_id)[1]
            except AssertionError:  # not started yet
                return None

        steps = wait_for(started, 120, 0.2)
        assert steps, (stack.run(run_id)["status"], stack.servers.log_tail("daemon"))

        def rendering():  # fast: /proc and the folder only
            kids = [c for step in steps for c in render_worker_pids(step, marker)]
            files = next(folder.glob("*.pdf"), None) if folder.exists() else None
            return kids if len(kids) >= 2 and files else None

        renderers = wait_for(rendering, 120, 0.02)
        assert renderers, (stack.run(run_id)["status"], stack.servers.log_tail("daemon"))
        _, run_pids = stack.kill_run_processes(run_id, which)
        killed_at = time.time()
        assert len(list(folder.iterdir())) < 2 * students, "the batch ended before the kill"
        everything = [*run_pids, *renderers]
        assert wait_for(lambda: not any(pid_alive(p) for p in everything), 10, 0.1), (
            which,
            {p: (pid_alive(p), _ppid(p), _cmdline(p)) for p in everything},
        )
        assert stack.wait_run(run_id, timeout=30)["status"] == "FAILURE"
    finally:  # never leave an orphan behind, whatever failed
        for pid in renderers or []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    retry = wait_for(lambda: stack.runs({"dagster/parent_run_id": run_id}), 90, 0.5)
    assert retry and len(retry) == 1, stack.servers.log_tail("daemon")
    done = stack.wait_run(retry[0]["runId"], timeout=180)
    assert done["status"] == "SUCCESS", stack.servers.log_tail("daemon")
    # Nothing was written between the kill (+1 s for writes in flight) and the retry's start:
    # no orphan went on rendering.
    retry_started = done["startTime"]
    late = [p.name for p in folder.iterdir() if killed_at + 1.0 < p.stat().st_mtime < retry_started]
    assert not late, late[:5]
    rows = stack.scalar("SELECT count(*) FROM report_artifacts WHERE week_start = :w", w=week)
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    # The retry re-ran the same config: every student, HTML + PDF, one row per file.
    assert rows == len(files) == 2 * students, (rows, len(files), students)
    assert duplicate_keys(stack, "report_artifacts") == 0


@contextlib.contextmanager
def killed_mid_write(
    stack: OpsStack, day: date, which: str = "both"
) -> Iterator[tuple[str, list[int]]]:
    """Materialize ``day``, hold the run mid-write, SIGKILL ``which`` of its processes (see
    ``OpsStack.kill_run_processes``), wait until every process of the run is gone except a
    worker left alive on purpose, queue a SHARE lock behind the dead transaction, release the
    row; yields (run id, the dead transaction's backends) once that transaction has ended,
    with every later writer of the table (the retry) waiting until the block exits."""
    with contextlib.ExitStack() as until_the_end:
        with holding_last_row(stack, day):
            run_id = stack.materialize(FEATURES, day.isoformat())
            writers = wait_for(lambda: stack.waiting_on_lock(DELETE_FEATURES), 120, 0.2)
            assert writers, stack.run(run_id)
            assert stack.run(run_id)["status"] == "STARTED"
            killed, run_pids = stack.kill_run_processes(run_id, which)
            # Killing the worker takes its step along (PR_SET_PDEATHSIG): nothing of the run
            # survives to commit. A step killed alone leaves its worker to report it.
            gone = run_pids if which != "step" else killed
            assert wait_for(lambda: not any(pid_alive(p) for p in gone), 10, 0.1), (
                which,
                [p for p in run_pids if pid_alive(p)],
            )
            # The dead transaction still waits on our row. Queue a SHARE lock behind it so that
            # no new writer (the retry) slips in between its end and our look.
            share = until_the_end.enter_context(share_lock_queued(stack, FEATURES))
            assert wait_for(lambda: stack.waiting_on_lock("LOCK TABLE"), 30, 0.1)
        share.result(timeout=60)  # granted: the dead transaction has ended
        assert wait_for(lambda: not [p for p in writers if stack.backend_alive(p)], 30, 0.2)
        yield run_id, writers


def test_operator_force_terminates_a_hung_run_and_relaunches(ops_stack: OpsStack):
    """Workflow 6, a run hangs mid-write: it waits inside its replace transaction (on a row we
    lock). The operator uses *Terminate* → *Force termination* (``terminateRuns`` with
    ``MARK_AS_CANCELED_IMMEDIATELY``): the run is CANCELED at once, its worker and step
    processes end, it is not retried, and once the lock goes the hung transaction ends
    without committing (the day is still the previous complete set). The operator then
    materializes the day again: SUCCESS, with exactly the raw attempts' student x topic pairs
    and no duplicate key."""
    stack = ops_stack
    day = stack.complete_weeks(3)[0] + timedelta(days=4)
    before = ensure_materialized(stack, day)
    add_late_attempts(stack, day)
    pairs, attempts = expected_feature_rows(stack, day)

    with holding_last_row(stack, day):
        run_id = stack.materialize(FEATURES, day.isoformat())
        writers = wait_for(lambda: stack.waiting_on_lock(DELETE_FEATURES), 120, 0.2)
        assert writers and stack.run(run_id)["status"] == "STARTED"
        worker, steps = stack.run_worker_pids(run_id)
        [result] = stack.terminate([run_id], "MARK_AS_CANCELED_IMMEDIATELY")
        assert result["__typename"] == "TerminateRunSuccess", result
        assert result["run"]["status"] == "CANCELED"
        assert wait_for(lambda: not any(pid_alive(p) for p in [worker, *steps]), 60, 0.2)
        assert day_snapshot(stack, day) == before
    assert wait_for(lambda: not [p for p in writers if stack.backend_alive(p)], 30, 0.2)
    assert day_snapshot(stack, day) == before  # the cancelled transaction committed nothing
    assert stack.run(run_id)["status"] == "CANCELED"

    rerun = stack.wait_run(stack.materialize(FEATURES, day.isoformat()))
    assert rerun["status"] == "SUCCESS", stack.servers.log_tail("daemon")
    after = day_snapshot(stack, day)
    assert after[:3] == (pairs, attempts, 1) and after[3] > before[3], (before, after)
    assert duplicate_keys(stack, FEATURES) == 0
    assert stack.runs({"dagster/parent_run_id": run_id}) == []  # a cancelled run is not retried


# --------------------------------------------------------------------------- 4. daemon crash
def test_daemon_killed_mid_backfill_and_queue_resumes_exactly_once(ops_stack: OpsStack):
    """Workflow 6, the daemon dies: a backfill of 14 days of ``features_topic_daily`` has its
    run started when the daemon is SIGKILLed; while it is down, that run still finishes (its
    code server outlives the daemon), an operator's "Materialize" of another day stays QUEUED
    and the backfill stays REQUESTED with no new run. After a restart the queued run runs
    once and the backfill completes: each partition materialized exactly once, the backfill
    in the single run its policy predicts (no run duplicated by the restart), and the rows
    match SQL counts with no duplicate key."""
    stack = ops_stack
    days = [(stack.week(1) + timedelta(days=i)).isoformat() for i in range(14)]
    queued_day = stack.week(2) + timedelta(days=2)
    selection = {FEATURES: days}
    predicted = predicted_runs({FEATURES: len(days)})
    assert predicted == 1
    # Runs of the queued day that earlier tests (or runs) left: not this test's to count.
    earlier = {r["runId"] for r in stack.runs_for_partition(FEATURES, queued_day.isoformat())}

    backfill_id = stack.launch_backfill({"partitionsByAssets": backfill_by_asset(days, [], [])})
    started = wait_for(
        lambda: [
            r for r in stack.runs({"dagster/backfill": backfill_id}) if r["status"] == "STARTED"
        ],
        120,
        0.5,
    )
    assert started, stack.servers.log_tail("daemon")
    stack.servers.kill("daemon")
    try:
        queued_id = stack.materialize(FEATURES, queued_day.isoformat())
        first = stack.wait_run(started[0]["runId"], timeout=120)
        assert first["status"] == "SUCCESS"
        time.sleep(3)  # several queue intervals without a daemon
        assert stack.run(queued_id)["status"] == "QUEUED"
        assert stack.backfill(backfill_id)["status"] == "REQUESTED"
    finally:
        stack.servers.restart("daemon")
    queued = stack.wait_run(queued_id, timeout=120)
    assert queued["status"] == "SUCCESS", stack.servers.log_tail("daemon")
    backfill = stack.wait_backfill(backfill_id, timeout=120)
    runs = stack.runs({"dagster/backfill": backfill_id})
    print(f"\nbackfill across a daemon crash: {len(runs)} runs (predicted {predicted})")
    print(describe(runs))
    check_backfill_outcome(stack, backfill, runs, selection)
    assert [r["runId"] for r in runs] == [first["runId"]]
    assert [
        r["runId"]
        for r in stack.runs_for_partition(FEATURES, queued_day.isoformat())
        if r["runId"] not in earlier
    ] == [queued_id]
    assert materialized_once(stack, FEATURES, [queued_day.isoformat()], {queued_id}) == {
        queued_day.isoformat(): 1
    }
    for day in [*map(date.fromisoformat, days), queued_day]:
        assert stored_feature_rows(stack, day) == expected_feature_rows(stack, day), day
    assert duplicate_keys(stack, FEATURES) == 0
