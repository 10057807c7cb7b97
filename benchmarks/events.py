"""Benchmark: per-student events (one materialization of ``student/<asset>`` per student).

One Dagster run (``dg.materialize``, in process) records ``--students`` per-student
materializations through ``record_student_materializations`` (the weekly batch's path), on:

1. the stock SQLite instance (``SqliteEventLogStorage``, Dagster's default): the baseline,
   on ``--baseline-students`` (it is slow: per event a new engine and two transactions);
2. the laptop default (``dagster.yaml``: ``BatchedSqliteEventLogStorage``);
3. a PostgreSQL instance (``dagster-postgres``, database ``seedtest_bench_events``).

Printed: seconds for the run's event-recording step, milliseconds per event, and each against
the stock SQLite in the same process. Goal (issue 18): the SQLite path <= 2 ms per event.

Run:  .venv/bin/python benchmarks/events.py [--students 100000 --baseline-students 2000]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dagster as dg
from common import ADMIN_URL, ensure_database, machine, peak_rss_mb, run_main
from sqlalchemy import text
from sqlalchemy.engine import make_url

from seedtest_assets.core.warehouse import make_engine
from seedtest_assets.defs.student_events import record_student_materializations

STUDENT_KEY = dg.AssetKey(["student", "events_probe"])
STOCK = {"module": "dagster._core.storage.event_log", "class": "SqliteEventLogStorage"}
BATCHED = {"module": "seedtest_assets.defs.event_storage", "class": "BatchedSqliteEventLogStorage"}


def probe_asset(students: list[str], seconds: dict[str, float]) -> dg.AssetsDefinition:
    @dg.asset(name="events_probe")
    def probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        meta = {u: {"theta": i / 1000, "n_responses": 50} for i, u in enumerate(students)}
        t0 = time.perf_counter()
        path = record_student_materializations(context, STUDENT_KEY, meta)
        seconds["record"] = time.perf_counter() - t0
        return dg.MaterializeResult(metadata={"path": path})

    return probe


def run(overrides: dict, n: int, home: str) -> tuple[float, float]:
    """(seconds recording ``n`` events, seconds for the whole run) on an instance."""
    Path(home).mkdir(parents=True, exist_ok=True)
    students = [f"u-{i:06d}" for i in range(n)]
    seconds: dict[str, float] = {}
    with dg.instance_for_test(temp_dir=home, overrides=overrides) as instance:
        t0 = time.perf_counter()
        result = dg.materialize([probe_asset(students, seconds)], instance=instance)
        total = time.perf_counter() - t0
        assert result.success
        got = len(instance.get_materialized_partitions(STUDENT_KEY))
        if got != n:
            raise RuntimeError(f"{got} of {n} student partitions recorded")
    return seconds["record"], total


def sqlite_overrides(storage: dict, home: str) -> dict:
    return {"event_log_storage": {**storage, "config": {"base_dir": f"{home}/history/runs"}}}


def postgres_overrides(url: str) -> dict:
    u = make_url(url)
    pg = {
        "postgres_db": {
            "username": u.username or "postgres",
            "password": u.password or "",
            "hostname": u.host or "127.0.0.1",
            "db_name": u.database,
            "port": u.port or 5432,
        }
    }
    return {
        "storage": {"postgres": pg},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "DefaultRunCoordinator",
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=100_000)
    ap.add_argument("--baseline-students", type=int, default=2_000)
    args = ap.parse_args()
    print(f"per-student events; {machine()}")
    rows: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = f"{tmp}/stock"
        rec, total = run(sqlite_overrides(STOCK, home), args.baseline_students, home)
        rows.append(("SQLite, stock storage (baseline)", args.baseline_students, rec, total))
        home = f"{tmp}/batched"
        rec, total = run(sqlite_overrides(BATCHED, home), args.students, home)
        rows.append(("SQLite, laptop default (batched)", args.students, rec, total))
        size = sum(p.stat().st_size for p in Path(home).rglob("*.db"))
        print(f"SQLite instance files after {args.students:,} events: {size / 2**20:,.0f} MiB")
    url = ensure_database("seedtest_bench_events", migrate=False)
    engine = make_engine(url)
    with engine.begin() as conn:  # a fresh instance each run
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        rec, total = run(postgres_overrides(url), args.students, tmp)
    rows.append(("PostgreSQL instance", args.students, rec, total))
    base = rows[0][2] / rows[0][1]
    for name, n, rec, total in rows:
        per = rec / n
        print(
            f"{name:34s} {n:>7,} events: record {rec:7.2f} s = {per * 1e3:6.3f} ms/event "
            f"(run {total:6.1f} s); stock / this {base / per:5.1f}x"
        )
    per_sqlite = rows[1][2] / rows[1][1] * 1e3
    verdict = "MET" if per_sqlite <= 2 else "MISSED"
    print(f"goal SQLite <= 2 ms per event: {verdict} ({per_sqlite:.2f} ms)")
    print(f"peak RSS: {peak_rss_mb():,.0f} MiB; admin {make_url(ADMIN_URL).host}")


if __name__ == "__main__":
    run_main(main)
