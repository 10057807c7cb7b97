"""Benchmark: online ability updates through the ``new_attempts`` sensor, real daemon, PostgreSQL.

Set-up (untimed; reused across runs where possible): a 100,000-student x 12-week population in
database ``seedtest_bench_online`` (fixed start, so it is generated once), item parameters
calibrated for its last week by the weekly pipeline, and a fresh Dagster instance on
PostgreSQL (own database, own DAGSTER_HOME) with all 100,000 students registered as ``users``
partitions. Then the real ``dagster-webserver`` and ``dagster-daemon`` start on our code
location, with the sensor's DEFAULT interval (30 s), and the sensor is turned on through
GraphQL (``startSensor``), as an operator does.

Measured:

1. **Burst**: 1,000 students complete a 12-item session at the same moment (one transaction).
   Time from the commit until all 1,000 have a new ``online`` row in ``mirt_ability``; runs
   launched by the sensor (after one more tick, to show repeated ticks add none); the duration
   of the tick that requested them (the daemon's tick start -> end); the run's own duration.
2. **Backlog**: 100,000 new attempts (2,000 of them from students not registered yet, 10% dated
   yesterday) pending at once: the duration of the tick(s) that take them, and the sensor's
   evaluation in this process (``build_sensor_context``, same instance and warehouse). The
   on-time rows are dated just inside the sensor's lag. Since text ids (migration 0008) the
   cursor is ``(attempted_at, id)``: the rows dated yesterday are behind it and are left to
   the daily features batch (docs/online.md), so "features runs requested for yesterday" is
   0 where the id-order cursor before it requested 1.
3. **Baseline, same process, same daemon**: the naive approach, one run per student (what a
   session-complete hook launching a Dagster run, or a backfill of non-contiguous ``users``
   partitions, does; ADR 0001 row 4c): ``--baseline`` students, one ``student_rescore_job`` run
   each, launched through GraphQL; time until all have their row, extrapolated linearly to the
   burst size, and the ratio against the burst.

Goals (issue 5): all 1,000 updated within 60 s of the inserts; every tick <= 5 s.

Run:  .venv/bin/python benchmarks/online.py [--users 100000 --burst 1000 --pending 100000]
      [--baseline 20] [--keep]
Everything it inserts is deleted at the end; the instance database and DAGSTER_HOME are dropped
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The real-server helpers live in the test package, which is not installed (the wheel ships
# only seedtest_assets): import it from the checkout.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl
from common import (
    machine,
    open_population,
    peak_rss_mb,
    population_arguments,
    run_main,
    write_figures,
)
from sqlalchemy import BigInteger, cast, delete, func, select, text

from seedtest_assets.core.synthetic.generate import format_id
from seedtest_assets.core.warehouse import insert_frame, make_engine, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.partitions import user_partition_key, users
from seedtest_assets_tests.conftest import create_postgres_database, drop_postgres_database
from seedtest_assets_tests.dagster_servers import dagster_servers, dagster_yaml, wait_for
from seedtest_assets_tests.factories import ATTEMPT_SCHEMA

START = date(2026, 8, 24)  # fixed Monday: the 12 weeks end on 2026-11-15
SENSOR = "new_attempts"
LAUNCH_RUN = """
mutation Launch($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

ROWS: list[tuple[str, str]] = []


def record(what: str, value: object) -> None:
    ROWS.append((what, str(value)))
    print(f"  {what}: {value}", flush=True)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def calibrated_week(url: str, week: date) -> str:
    """Calibrate ``week`` with the weekly pipeline unless it is stored already."""
    from seedtest_assets.core.mirt_item_params.pipeline import calibrate_week, stored_item_params

    engine = make_engine(url)
    try:
        if stored_item_params(engine, week, "2PL").height == 0:
            t0 = time.perf_counter()
            run = calibrate_week(engine, week, now=utc_now())
            print(
                f"  calibrated {run.version}: {run.items} items in {time.perf_counter() - t0:.1f} s"
            )
        return f"2PL@{week.isoformat()}"
    finally:
        engine.dispose()


def _max_number(conn, column, style: str) -> int:
    """The largest generated number in an id column (``u-000123`` -> 123, ``"123"`` -> 123):
    new rows are numbered after it, in the population's id style."""
    if style == "integer":  # bare digits in TEXT: compare as numbers, not as text
        return int(conn.execute(select(func.max(cast(column, BigInteger)))).scalar_one())
    top = conn.execute(select(func.max(column))).scalar_one()  # fixed width: text order
    return int(re.sub(r"\D", "", top))


class Inserts:
    """Rows this benchmark adds to the warehouse (ids in the population's style), removed
    again at the end."""

    def __init__(self, url: str, style: str):
        self.engine = make_engine(url)
        self.style = style
        with self.engine.connect() as conn:
            self.attempt_base = int(conn.execute(select(func.max(s.attempts.c.id))).scalar_one())
            self.session_base = _max_number(conn, s.exam_sessions.c.session_id, style)
            self.user_base = _max_number(conn, s.users.c.user_id, style)
            self.org_id = conn.execute(select(func.min(s.organizations.c.org_id))).scalar_one()
            self.items = conn.execute(select(s.items.c.item_id, s.items.c.topic_id)).all()
            self.students = np.array(
                conn.execute(select(s.users.c.user_id).order_by(s.users.c.user_id)).scalars().all()
            )
        self.next_attempt = self.attempt_base + 1
        self.next_session = self.session_base + 1
        self.added_sessions: list[str] = []
        self.added_users: list[str] = []
        self.started = utc_now()

    def ids(self, column: str, first: int, n: int) -> np.ndarray:
        return np.array([format_id(column, k, self.style) for k in range(first, first + n)])

    def attempts(
        self,
        user_ids: np.ndarray,
        per_user: int,
        at: datetime,
        rng,
        session=None,
        spacing: timedelta = timedelta(minutes=1),
    ):
        """``per_user`` attempts per student on random items, ``spacing`` apart, answered up
        to ``at``."""
        n = user_ids.size * per_user
        pick = rng.integers(0, len(self.items), n)
        items = np.array(self.items, dtype=object)[pick]
        ids = np.arange(self.next_attempt, self.next_attempt + n)
        self.next_attempt += n
        # Outside a session: session number 0, which no session has (as before text ids).
        none = format_id("session_id", 0, self.style)
        sessions = np.repeat(session, per_user) if session is not None else np.full(n, none)
        minutes = np.tile(np.arange(per_user, 0, -1), user_ids.size)
        return pl.DataFrame(
            {
                "id": ids,
                "user_id": np.repeat(user_ids, per_user),
                "session_id": sessions,
                "item_id": items[:, 0],
                "topic_id": items[:, 1],
                "is_correct": rng.random(n) < 0.6,
                "response_time_ms": rng.integers(5_000, 60_000, n),
                "hints_used": np.zeros(n, int),
                "attempted_at": [at - int(m) * spacing for m in minutes],
            },
            schema=ATTEMPT_SCHEMA,
        )

    def burst(self, user_ids: np.ndarray, per_user: int, rng) -> datetime:
        """Every student answers ``per_user`` items and completes a session, in one commit."""
        now = utc_now()
        sessions = self.ids("session_id", self.next_session, user_ids.size)
        self.next_session += user_ids.size
        self.added_sessions += sessions.tolist()
        frame = self.attempts(user_ids, per_user, now, rng, session=sessions)
        done = pl.DataFrame(
            {
                "session_id": sessions,
                "user_id": user_ids,
                "started_at": [now - timedelta(minutes=per_user + 1)] * user_ids.size,
                "completed_at": [now] * user_ids.size,
            },
            schema={
                "session_id": pl.String,
                "user_id": pl.String,
                "started_at": pl.Datetime("us"),
                "completed_at": pl.Datetime("us"),
            },
        )
        with transaction(self.engine) as conn:
            insert_frame(conn, s.attempts, frame)
            insert_frame(conn, s.exam_sessions, done)
        return now

    def new_students(self, n: int) -> np.ndarray:
        ids = self.ids("user_id", self.user_base + 1, n)
        self.added_users += ids.tolist()
        now = utc_now()
        with transaction(self.engine) as conn:
            insert_frame(
                conn,
                s.users,
                pl.DataFrame(
                    {
                        "user_id": ids,
                        "org_id": [self.org_id] * n,
                        "display_name": [f"new {i}" for i in ids],
                        "created_at": [now] * n,
                    }
                ),
            )
        return ids

    def cleanup(self) -> None:
        with transaction(self.engine) as conn:
            conn.execute(delete(s.attempts).where(s.attempts.c.id > self.attempt_base))
            for i in range(0, len(self.added_sessions), 5_000):
                chunk = self.added_sessions[i : i + 5_000]
                conn.execute(delete(s.exam_sessions).where(s.exam_sessions.c.session_id.in_(chunk)))
            for i in range(0, len(self.added_users), 5_000):
                chunk = self.added_users[i : i + 5_000]
                conn.execute(delete(s.users).where(s.users.c.user_id.in_(chunk)))
            conn.execute(delete(s.mirt_ability).where(s.mirt_ability.c.fitted_at >= self.started))
        self.engine.dispose()


def online_since(engine, since: datetime) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count(func.distinct(s.mirt_ability.c.user_id))).where(
                s.mirt_ability.c.source == "online", s.mirt_ability.c.fitted_at >= since
            )
        ).scalar_one()


def ticks_after(servers, since_epoch: float) -> list[dict]:
    return [
        t
        for t in servers.ticks(SENSOR)
        if t["timestamp"] >= since_epoch and t["endTimestamp"] is not None
    ]


def tick_seconds(t: dict) -> float:
    return t["endTimestamp"] - t["timestamp"]


def runs_since(instance, since: datetime, job: str | None = None) -> list:
    import dagster as dg

    return instance.get_runs(
        dg.RunsFilter(
            tags={"seedtest/trigger": "new_attempts"},
            created_after=since.replace(tzinfo=UTC),
            **({"job_name": job} if job else {}),
        )
    )


def run_seconds(instance, run_id: str) -> float | None:
    stats = instance.get_run_stats(run_id)
    if stats.start_time and stats.end_time:
        return stats.end_time - stats.start_time
    return None


#: Headline figures for ``--json`` (benchmarks/ids.py compares them between id styles).
FIGURES: dict[str, float] = {}
LAG_SECONDS = "5"


def measure_burst(args, servers, instance, inserts: Inserts, rng) -> tuple[float, np.ndarray]:
    print(f"\n== burst: {args.burst:,} students complete a session at once", flush=True)
    students = rng.choice(inserts.students, args.burst, replace=False)
    committed = inserts.burst(students, 12, rng)
    t0, epoch0 = time.monotonic(), time.time()
    done = wait_for(lambda: online_since(inserts.engine, committed) >= args.burst, 180, 0.5)
    elapsed = time.monotonic() - t0
    got = online_since(inserts.engine, committed)
    record(
        f"burst: commit -> all {args.burst:,} new online theta rows",
        f"{elapsed:.1f} s" if done else f"NOT DONE in 180 s ({got:,} of {args.burst:,})",
    )
    # One more tick after the runs: a repeated tick must launch nothing new.
    first = ticks_after(servers, epoch0)
    wait_for(lambda: len(ticks_after(servers, epoch0)) >= len(first) + 1, 90, 1.0)
    rescore = runs_since(instance, committed - timedelta(seconds=5), "student_rescore_job")
    every = runs_since(instance, committed - timedelta(seconds=5))
    record("burst: student_rescore_job runs launched (after one more tick)", len(rescore))
    record("burst: runs launched by the sensor in all", len(every))
    requested = [t for t in ticks_after(servers, epoch0) if t["runIds"]]
    if requested:
        t = requested[0]
        record("burst: tick that requested the run, duration", f"{tick_seconds(t):.2f} s")
        record("burst: commit -> that tick's start", f"{t['timestamp'] - epoch0:.1f} s")
    for run in rescore:
        config = run.run_config["ops"]["rescore_students"]["config"]
        FIGURES["rescore_run_seconds"] = run_seconds(instance, run.run_id) or 0.0
        record(
            f"burst: run {run.run_id[:8]} students / status / start->end",
            f"{len(config['user_ids']):,} / {run.status.value} / "
            f"{run_seconds(instance, run.run_id) or 0:.1f} s",
        )
    return elapsed, students


def measure_backlog(args, servers, instance, inserts: Inserts, rng, url: str) -> None:
    import dagster as dg

    from seedtest_assets.defs.automation.sensors import new_attempts
    from seedtest_assets.defs.resources import WarehouseResource

    print(f"\n== backlog: {args.pending:,} new attempts pending at once", flush=True)
    n_new = 2_000
    fresh = inserts.new_students(n_new)
    per_user = 10
    known = rng.choice(inserts.students, args.pending // per_user - n_new, replace=False)
    who = np.concatenate([known, fresh])
    now = utc_now()
    # Dated just before the sensor's lag (5 s here), after everything before: the cursor is
    # (attempted_at, id), so rows dated behind it would be left to the daily batch.
    frame = inserts.attempts(
        who, per_user, now - timedelta(seconds=6), rng, spacing=timedelta(milliseconds=100)
    )
    # 10% answered yesterday (an offline client syncing): that day's features are re-run.
    late = rng.random(frame.height) < 0.1
    frame = frame.with_columns(
        attempted_at=pl.when(pl.Series(late))
        .then(pl.col("attempted_at") - timedelta(days=1))
        .otherwise(pl.col("attempted_at"))
    )
    cursor = servers.ticks(SENSOR)[0]["cursor"]  # where the daemon's next tick starts
    with transaction(inserts.engine) as conn:
        insert_frame(conn, s.attempts, frame)
    epoch0 = time.time()
    drained = wait_for(
        lambda: [
            t
            for t in ticks_after(servers, epoch0)
            if t["cursor"] and json.loads(t["cursor"])["attempt_id"] >= inserts.next_attempt - 1
        ],
        150,
        1.0,
    )
    taken = ticks_after(servers, epoch0)
    durations = [tick_seconds(t) for t in sorted(taken, key=lambda t: t["timestamp"])]
    record(
        "backlog: daemon ticks until the cursor passed the backlog",
        f"{len(durations)}: " + ", ".join(f"{d:.2f} s" for d in durations)
        if drained
        else f"NOT DRAINED in 150 s ({len(durations)} ticks)",
    )
    registered = set(instance.get_dynamic_partitions(users.name))
    record(
        "backlog: new students registered as users partitions",
        f"{sum(user_partition_key(u) in registered for u in fresh):,} of {n_new:,}",
    )
    record(
        "backlog: features runs requested for yesterday",
        len(runs_since(instance, now - timedelta(seconds=5), "features_topic_daily_job")),
    )
    # The same evaluation again in this process, from the cursor before the backlog (the new
    # students are registered by now, so this omits their bulk add; nothing is launched).
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=url)},
    ) as context:
        t0 = time.perf_counter()
        result = new_attempts(context)
        local = time.perf_counter() - t0
    FIGURES["backlog_evaluation_seconds"] = local
    record(
        f"backlog: same evaluation re-run in this process ({args.pending:,} pending)",
        f"{local:.2f} s ({len(result.run_requests)} run request)",
    )


def measure_baseline(
    args, servers, instance, inserts: Inserts, rng, burst_seconds: float, burst: np.ndarray
) -> None:
    import dagster as dg

    print(f"\n== baseline: one run per student, {args.baseline} students", flush=True)
    # Students of the burst: each has a fresh session, so each run writes a row.
    students = rng.choice(burst, args.baseline, replace=False)
    start = utc_now()
    t0 = time.monotonic()
    run_ids = []
    for u in students:
        data = servers.graphql(
            LAUNCH_RUN,
            {
                "p": {
                    "selector": {
                        "repositoryLocationName": "seedtest_assets",
                        "repositoryName": "__repository__",
                        "jobName": "student_rescore_job",
                    },
                    "runConfigData": {
                        "ops": {"rescore_students": {"config": {"user_ids": [str(u)]}}}
                    },
                    "mode": "default",
                }
            },
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun failed: {data}")
        run_ids.append(data["run"]["runId"])
    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}

    def all_done() -> bool:
        runs = instance.get_runs(dg.RunsFilter(run_ids=run_ids))
        return online_since(inserts.engine, start) >= args.baseline or all(
            r.status in finished for r in runs
        )

    done = wait_for(all_done, 600, 0.5)
    elapsed = time.monotonic() - t0
    written = online_since(inserts.engine, start)
    if written < args.baseline:
        record("baseline: students with a new row", f"{written} of {args.baseline}")
    per = elapsed / args.baseline
    record(
        f"baseline: {args.baseline} students, one run each (max_concurrent_runs 4)",
        f"{elapsed:.1f} s ({per:.2f} s per student)" if done else "NOT DONE in 600 s",
    )
    if done:
        extrapolated = per * args.burst
        record(
            f"baseline extrapolated to {args.burst:,} students (linear)",
            f"{extrapolated:.0f} s",
        )
        record("ratio baseline / ours (burst)", f"{extrapolated / burst_seconds:.0f}x")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    population_arguments(ap, database="seedtest_bench_online")
    ap.add_argument("--burst", type=int, default=1_000)
    ap.add_argument("--pending", type=int, default=100_000)
    ap.add_argument("--baseline", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the instance DB and DAGSTER_HOME")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # Dagster's beta/preview notices on import
    started = time.monotonic()
    print(f"machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)

    url = open_population(args, START)
    week = START + timedelta(weeks=args.weeks - 1)
    version = calibrated_week(url, week)
    print(f"item parameters: {version}", flush=True)

    import dagster as dg

    rng = np.random.default_rng(args.seed)
    inserts = Inserts(url, args.id_style)
    instance_url = create_postgres_database("dagster_bench_online")
    home = Path(tempfile.mkdtemp(prefix="dagster_online_"))
    (home / "dagster.yaml").write_text(dagster_yaml(instance_url))
    instance = None
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        t0 = time.perf_counter()
        keys = [user_partition_key(u) for u in inserts.students]
        for i in range(0, len(keys), 10_000):
            instance.add_dynamic_partitions(users.name, keys[i : i + 10_000])
        record(
            f"setup: {len(keys):,} users partitions registered", f"{time.perf_counter() - t0:.1f} s"
        )
        # The attempts cursor's safety lag (default 120 s) only delays when the backlog is
        # seen; a short one keeps the drain inside this script's waits.
        os.environ["SEEDTEST_ATTEMPTS_LAG_SECONDS"] = LAG_SECONDS
        env = {
            "DATABASE_URL": url,
            "SEEDTEST_HOME": str(home),
            "SEEDTEST_ATTEMPTS_LAG_SECONDS": LAG_SECONDS,
        }
        with dagster_servers(home, instance_url, env) as servers:
            servers.start_sensor(SENSOR)
            t0 = time.monotonic()
            first = wait_for(lambda: [t for t in servers.ticks(SENSOR) if t["cursor"]], 120, 1.0)
            if not first:
                raise RuntimeError(f"no first tick:\n{servers.log_tail('daemon')}")
            record("sensor on -> first tick (cursor set)", f"{time.monotonic() - t0:.1f} s")
            burst_seconds, burst = measure_burst(args, servers, instance, inserts, rng)
            measure_backlog(args, servers, instance, inserts, rng, url)
            measure_baseline(args, servers, instance, inserts, rng, burst_seconds, burst)
            every = [tick_seconds(t) for t in servers.ticks(SENSOR) if t["endTimestamp"]]
            FIGURES["max_tick_seconds"] = max(every)
            FIGURES["burst_seconds"] = burst_seconds
            record(
                f"all {len(every)} ticks: max / median duration",
                f"{max(every):.2f} s / {sorted(every)[len(every) // 2]:.2f} s",
            )
    finally:
        if instance is not None:
            instance.dispose()
        inserts.cleanup()
        with make_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE attempts"))
        if args.keep:
            print(f"kept DAGSTER_HOME={home} and the instance database")
        else:
            drop_postgres_database(instance_url)
            shutil.rmtree(home, ignore_errors=True)

    print("\n| measurement | value |\n|---|---|")
    for what, value in ROWS:
        print(f"| {what} | {value} |")
    print(
        f"\nusers={args.users:,} burst={args.burst:,} pending={args.pending:,} "
        f"baseline={args.baseline}; peak RSS {peak_rss_mb():.0f} MiB; "
        f"total {time.monotonic() - started:.0f} s"
    )
    write_figures(args, **FIGURES)
    return 0


if __name__ == "__main__":
    run_main(main)
