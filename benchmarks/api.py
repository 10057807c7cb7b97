"""Benchmark: the θ-update service (``seedtest serve``) under closed-loop load, PostgreSQL.

Set-up (untimed; reused across runs where possible): the 100,000-student x 12-week population
of ``benchmarks/online.py`` (database ``seedtest_bench_online``), its last week calibrated and
scored by the weekly pipeline (the cached item bank and the population prior), ``VACUUM
ANALYZE`` of the source tables (what autovacuum does on a live warehouse) and ``pg_prewarm``
of ``attempts`` and its indexes into the OS cache (a live warehouse's hot table), an RSA key
with its
JWKS served over HTTP on loopback, a Dagster instance on PostgreSQL (its own database and
``DAGSTER_HOME``) receiving every update as a ``student/mirt_ability`` materialization, and
``seedtest serve --workers W`` as a real uvicorn process.

Measured, in one run:

1. **Load**: ``--requests`` requests (default 20,000) split evenly over the client counts
   (default 1, 8, 32, 128). Each client is a closed loop (httpx, async, its own connection):
   it sends ``POST /analysis/irt/update-theta`` for a random student with a bearer token
   (``analysis:run``), waits for the answer, and sends the next. Per level: p50/p95/p99
   latency, throughput (ok answers per second), noop answers (students without attempts in
   the window: correct answers, no row), errors (anything but a 200 ok or noop).
2. **Rows**: ``mirt_ability`` rows with ``source = 'api'`` written during the run, against the
   ok answers (lost = answered ok without a row; doubled = more rows than answers).
3. **UI events**: ``student/mirt_ability`` materializations recorded in the instance, and how
   long after the last answer the last one landed.
4. **Baseline, same run**: the sensor path (``benchmarks/online.py``'s): the real
   webserver + daemon with the ``new_attempts`` sensor at its default 30 s interval; one
   student completes one 12-item session; time from the commit until their new ``online`` θ
   row exists. Ratio: that time over the service's p50 at 32 clients.

Goals (issue 15, 2-core machine): p99 <= 50 ms at 32 clients, >= 300 updates/s, 0 errors,
0 lost rows; >= 500x faster to a fresh θ than the sensor path.

Run:  .venv/bin/python benchmarks/api.py [--requests 20000] [--clients 1,8,32,128]
      [--workers 2] [--no-baseline] [--keep]
Rows it writes are deleted at the end; the instance database and DAGSTER_HOME are dropped
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import numpy as np
from common import (
    cpu_seconds,
    machine,
    open_population,
    peak_rss_mb,
    population_arguments,
    run_main,
)
from online import START, Inserts, calibrated_week, online_since, utc_now
from sqlalchemy import delete, func, select, text

from seedtest_assets.core.warehouse import make_engine
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.api_servers import AUDIENCE, ISSUER, JwksServer, SigningKey, theta_server
from seedtest_assets_tests.conftest import create_postgres_database, drop_postgres_database
from seedtest_assets_tests.dagster_servers import dagster_servers, dagster_yaml, wait_for

ROWS: list[tuple[str, str]] = []
PATH = "/api/seedtest/analysis/irt/update-theta"


def record(what: str, value: object) -> None:
    ROWS.append((what, str(value)))
    print(f"  {what}: {value}", flush=True)


def scored_week(url: str, week) -> None:
    """Score the calibrated week with the weekly pipeline unless it is scored (the prior)."""
    from seedtest_assets.core.mirt_ability.pipeline import latest_ability_week, score_week

    engine = make_engine(url)
    try:
        if latest_ability_week(engine, week) != week:
            t0 = time.perf_counter()
            run = score_week(engine, week, now=utc_now())
            print(f"  scored {run.rows.height:,} students in {time.perf_counter() - t0:.1f} s")
    finally:
        engine.dispose()


async def load(url: str, token: str, students: np.ndarray, clients: int, n: int, days: int):
    """``clients`` closed loops sending ``n`` requests in all; (latencies s, errors, ok ids,
    noop ids, wall s)."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    ok: list[str] = []
    noop: list[str] = []
    counter = iter(range(n))
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            for i in counter:
                user = str(students[i])
                t0 = time.perf_counter()
                try:
                    r = await http.post(PATH, json={"user_id": user, "lookback_days": days})
                    body = r.json()
                except Exception as exc:
                    errors.append(type(exc).__name__)
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code == 200 and body.get("status") == "ok":
                    ok.append(user)
                elif r.status_code == 200 and body.get("status") == "noop":
                    noop.append(user)  # no attempts in the window: a correct answer
                else:
                    errors.append(f"{r.status_code} {body.get('status')}")

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return np.array(latencies), errors, ok, noop, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    population_arguments(ap, database="seedtest_bench_online")
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--clients", default="1,8,32,128")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
    ap.add_argument("--no-events", dest="events", action="store_false")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    levels = [int(c) for c in args.clients.split(",")]
    started = time.monotonic()
    print(f"machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)

    url = open_population(args, START)
    week = START + timedelta(weeks=args.weeks - 1)
    print(f"item parameters: {calibrated_week(url, week)}", flush=True)
    scored_week(url, week)
    engine = make_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        for table in ("attempts", "users", "items"):
            c.execute(text(f"VACUUM ANALYZE {table}"))  # fixed names, no input
        # A live warehouse keeps its hot table in memory; a fresh benchmark database would
        # read each student's ~150 scattered heap pages from disk (pg_prewarm: contrib).
        t0 = time.perf_counter()
        c.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        for rel in ("attempts", "ix_attempts_user_id_attempted_at", "ix_attempts_id"):
            c.execute(text("SELECT pg_prewarm(CAST(:rel AS regclass), 'read')"), {"rel": rel})
        print(
            f"  prewarmed attempts and its indexes (OS cache) in {time.perf_counter() - t0:.1f} s"
        )
    with engine.connect() as c:
        students = np.array(c.execute(select(s.users.c.user_id)).scalars().all())
    # The whole 12 weeks up to today (the population ends on a fixed date).
    days = (utc_now().date() - START).days + 1

    key = SigningKey.rsa()
    jwks = JwksServer([key])
    token = key.token(sub="bench-client", scope="analysis:run", expires_in=7200)
    instance_url = create_postgres_database("dagster_bench_api")
    home = Path(tempfile.mkdtemp(prefix="dagster_api_"))
    (home / "dagster.yaml").write_text(dagster_yaml(instance_url))
    env = {
        "DATABASE_URL": url,
        "JWKS_URL": jwks.url,
        "JWT_AUD": AUDIENCE,
        "JWT_ISS": ISSUER,
        "LOCAL_DEV": "false",
        "SEEDTEST_HOME": str(home),
        "DAGSTER_HOME": str(home) if args.events else "",
    }
    rng = np.random.default_rng(args.seed)
    since = utc_now()
    inserts = None
    try:
        print(
            f"\n== load: {args.requests:,} requests, clients {levels}, {args.workers} worker(s)",
            flush=True,
        )
        all_ok: list[str] = []
        with theta_server(env, home, workers=args.workers) as server:
            ready = wait_for(lambda: server.request("GET", "/readyz")[0] == 200, 60, 0.5)
            if not ready:
                raise RuntimeError(f"/readyz never ok:\n{server.log_text()[-3000:]}")
            # Warm-up (connections, first tables): not counted.
            warm = asyncio.run(load(server.url, token, rng.choice(students, 200), 8, 200, days))
            since = utc_now()
            per_level = args.requests // len(levels)
            print(
                "| clients | requests | p50 ms | p95 ms | p99 ms | updates/s | noop | errors "
                "| CPU ms per answer: server / PostgreSQL / clients |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            trees = {"server": server.proc.pid}  # type: ignore[attr-defined]
            figures = {}
            for clients in levels:
                picked = rng.choice(students, per_level, replace=False)
                cpu0 = cpu_seconds(trees)
                lat, errors, ok, noop, wall = asyncio.run(
                    load(server.url, token, picked, clients, per_level, days)
                )
                cpu1 = cpu_seconds(trees)
                # Where the 2 cores went: the server's workers (events writer included), every
                # PostgreSQL backend (warehouse and instance), and the clients (this process).
                cpu = " / ".join(
                    f"{(cpu1[k] - cpu0[k]) * 1000 / per_level:.1f}"
                    for k in ("server", "postgres", "this")
                )
                all_ok += ok
                p50, p95, p99 = (np.percentile(lat, q) * 1000 for q in (50, 95, 99))
                rate = len(ok) / wall
                figures[clients] = (p50, p95, p99, rate, len(errors))
                print(
                    f"| {clients} | {per_level:,} | {p50:.1f} | {p95:.1f} | {p99:.1f} | "
                    f"{rate:.0f} | {len(noop)} | {len(errors)} | {cpu} |",
                    flush=True,
                )
                if errors:
                    print(f"    errors e.g. {sorted(set(errors))[:5]}")
            _, metrics, _ = server.request("GET", "/metrics")
            text_metrics = metrics.get("_text", "")
            wanted = [
                ln
                for ln in text_metrics.splitlines()
                if ln.startswith(("theta_update_total", "theta_item_bank_info"))
            ]
            record("metrics after the run", "; ".join(wanted))
            answered = time.monotonic()
            if args.events:
                import dagster as dg

                instance = dg.DagsterInstance.from_config(str(home))
                seen = {"n": 0, "cursor": None}

                def events() -> int:
                    # Only the records since the last poll (fetching all 20,000 each time took
                    # seconds and showed as lag).
                    while True:
                        got = instance.fetch_materializations(
                            dg.AssetKey(["student", "mirt_ability"]),
                            limit=5000,
                            cursor=seen["cursor"],
                            ascending=True,
                        )
                        seen["n"] += len(got.records)
                        seen["cursor"] = got.cursor
                        if not got.has_more:
                            return int(seen["n"])

                n_ok_all = len(all_ok) + len(warm[2])
                done = wait_for(lambda: events() >= n_ok_all, 300, 0.25)
                record(
                    "UI events recorded (student/mirt_ability, incl. warm-up)",
                    f"{events():,} of {n_ok_all:,}, last "
                    f"{time.monotonic() - answered:.1f} s after the last answer"
                    + ("" if done else " (NOT all)"),
                )
                instance.dispose()
        with engine.connect() as c:
            rows = c.execute(
                select(func.count()).where(
                    s.mirt_ability.c.source == "api", s.mirt_ability.c.fitted_at >= since
                )
            ).scalar_one()
        record("ok answers / api rows written", f"{len(all_ok):,} / {rows:,}")
        record(
            "lost rows / doubled rows",
            f"{max(len(all_ok) - rows, 0)} / {max(rows - len(all_ok), 0)}",
        )

        if args.baseline:
            print("\n== baseline: the sensor path, one session", flush=True)
            inserts = Inserts(url, args.id_style)
            os.environ["SEEDTEST_ATTEMPTS_LAG_SECONDS"] = "5"
            denv = {
                "DATABASE_URL": url,
                "SEEDTEST_HOME": str(home),
                "SEEDTEST_ATTEMPTS_LAG_SECONDS": "5",
            }
            with dagster_servers(home, instance_url, denv) as servers:
                servers.start_sensor("new_attempts")
                first = wait_for(
                    lambda: [t for t in servers.ticks("new_attempts") if t["cursor"]], 120, 1.0
                )
                if not first:
                    raise RuntimeError(f"no first tick:\n{servers.log_tail('daemon')}")
                student = rng.choice(inserts.students, 1, replace=False)
                committed = inserts.burst(student, 12, rng)
                t0 = time.monotonic()
                ok = wait_for(lambda: online_since(inserts.engine, committed) >= 1, 180, 0.25)
                sensor_s = time.monotonic() - t0
                record(
                    "sensor path: commit -> the student's new theta row",
                    f"{sensor_s:.1f} s" if ok else "NOT DONE in 180 s",
                )
            if 32 in figures and ok:
                record(
                    "ratio sensor path / service p50 at 32 clients",
                    f"{sensor_s / (figures[32][0] / 1000):,.0f}x",
                )
    finally:
        with engine.begin() as c:
            c.execute(
                delete(s.mirt_ability).where(
                    s.mirt_ability.c.source == "api",
                    s.mirt_ability.c.fitted_at >= since - timedelta(minutes=10),
                )
            )
        if inserts is not None:
            inserts.cleanup()
        engine.dispose()
        jwks.close()
        if args.keep:
            print(f"kept DAGSTER_HOME={home} and the instance database")
        else:
            drop_postgres_database(instance_url)
            shutil.rmtree(home, ignore_errors=True)

    print("\n| measurement | value |\n|---|---|")
    for what, value in ROWS:
        print(f"| {what} | {value} |")
    print(
        f"\nrequests={args.requests:,} workers={args.workers} lookback_days={days}; "
        f"peak RSS (benchmark process) {peak_rss_mb():.0f} MiB; "
        f"total {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
