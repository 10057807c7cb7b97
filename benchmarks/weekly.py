"""Benchmark: the whole Monday at 100,000 students, through Dagster.

What one Monday does in production, as Dagster runs on one instance (in this process, with
Dagster's in-process executor: the run, its event log and every per-student materialization
are stored in the instance as the daemon's runs are):

1. ``features_topic_daily_job`` for each of the week's 7 days (the 01:15 schedule's runs);
2. ``mirt_weekly_job`` for the week: ``mirt_item_params`` (warm start from last week),
   ``mirt_ability`` (with one ``student/mirt_ability`` event per student), ``topic_ability``,
   ``weekly_kpi``; each step's time is read from the run's event log;
3. ``report_artifacts_job`` for the week: every active student's report (HTML + PDF) into the
   local store, with one ``student/report_artifacts`` event per student.

Set-up, not timed: the population (``benchmarks/generate.py``'s, in its own database
``seedtest_bench_weekly``), a fresh Dagster instance (PostgreSQL database
``seedtest_bench_dagster``, or ``--instance sqlite``: the laptop's ``dagster.yaml`` in a temp
folder), and the week before through its features and ``mirt_weekly_job`` (last week's
parameters and θ: the warm start and the reports' history). Printed: each step's seconds, the
total against the goal (issue 18: <= 180 s on a PostgreSQL instance), what each step did.

The baseline in the same process, ``--baseline``: the week's calibration as it ran before issue
18 (plain EM from a cold start; ``accelerate: none``, ``warm_start: false``), re-run after the
timed Monday.

Run:  .venv/bin/python benchmarks/weekly.py [--instance postgres|sqlite] [--max-reports N]
      [--baseline] [--users 100000 --weeks 12]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ADMIN_URL,
    ensure_database,
    machine,
    open_population,
    peak_rss_mb,
    population_arguments,
    run_main,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

START = date(2026, 8, 3)  # the population of benchmarks/generate.py
REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 180.0


def instance_yaml(kind: str, url: str) -> str:
    """The instance's dagster.yaml: the repository's (SQLite) or PostgreSQL storage."""
    base = (REPO / "dagster.yaml").read_text()
    if kind == "sqlite":
        return base
    u = make_url(url)
    return (
        base
        + f"""
storage:
  postgres:
    postgres_db:
      username: {u.username or "postgres"}
      password: "{u.password or ""}"
      hostname: {u.host or "127.0.0.1"}
      db_name: {u.database}
      port: {u.port or 5432}
"""
    ).replace(
        "event_log_storage:\n  module: seedtest_assets.defs.event_storage\n  class: "
        "BatchedSqliteEventLogStorage\n",
        "",
    )


def fresh_instance_database() -> str:
    url = ensure_database("seedtest_bench_dagster", migrate=False)
    from seedtest_assets.core.warehouse import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds from STEP_START to STEP_SUCCESS of each step of the run."""
    import dagster as dg

    starts: dict[str, float] = {}
    out: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or ev.step_key is None:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[ev.step_key] = entry.timestamp
        elif ev.event_type == dg.DagsterEventType.STEP_SUCCESS:
            out[ev.step_key] = entry.timestamp - starts[ev.step_key]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    population_arguments(ap, database="seedtest_bench_weekly")
    ap.add_argument("--instance", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--max-reports", type=int, default=10**7, help="cap on the week's reports")
    ap.add_argument("--baseline", action="store_true", help="also time the old calibration")
    args = ap.parse_args()
    print(f"the Monday through Dagster, {args.instance} instance; {machine()}", flush=True)
    url = open_population(args, START)
    week = START + timedelta(weeks=args.weeks - 1)  # the last full week of the data
    previous = week - timedelta(days=7)

    tmp = Path(tempfile.mkdtemp(prefix="seedtest-weekly-"))
    home = tmp / "dagster"
    home.mkdir()
    instance_url = fresh_instance_database() if args.instance == "postgres" else ""
    (home / "dagster.yaml").write_text(instance_yaml(args.instance, instance_url))
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "DATABASE_URL": url,
            "SEEDTEST_HOME": str(tmp / "seedtest"),
            "SEEDTEST_PARTITIONS_START": START.isoformat(),
        }
    )
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    from seedtest_assets.core.settings import frozen_utc_now
    from seedtest_assets.definitions import build_defs

    defs = build_defs()
    features = defs.resolve_job_def("features_topic_daily_job")
    weekly = defs.resolve_job_def("mirt_weekly_job")
    reports = defs.resolve_job_def("report_artifacts_job")
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    report_config = {
        **quiet,
        "ops": {"report_artifacts": {"config": {"max_users": args.max_reports}}},
    }

    with dg.DagsterInstance.get() as instance:

        def run(job, key: str, config: dict | None = None) -> tuple[float, str]:
            # The code's clock at that Monday 03:10 (the schedules' time), so the week is the
            # latest complete one and its per-student events are recorded as in production.
            monday = datetime.combine(date.fromisoformat(key), datetime.min.time())
            monday += timedelta(days=7 if job is not features else 1, hours=3, minutes=10)
            t0 = time.perf_counter()
            with frozen_utc_now(monday):
                result = job.execute_in_process(
                    instance=instance, partition_key=key, run_config=config or quiet
                )
            if not result.success:
                raise RuntimeError(f"{job.name} {key} failed")
            return time.perf_counter() - t0, result.run_id

        t0 = time.perf_counter()
        for d in range(7):
            run(features, (previous + timedelta(days=d)).isoformat())
        run(weekly, previous.isoformat())
        print(f"set-up (the week before, not timed): {time.perf_counter() - t0:.0f} s", flush=True)

        rows: list[tuple[str, float]] = []
        t_all = time.perf_counter()
        feature_seconds = 0.0
        for d in range(7):
            s, _ = run(features, (week + timedelta(days=d)).isoformat())
            feature_seconds += s
        rows.append(("features_topic_daily, 7 runs", feature_seconds))
        s, run_id = run(weekly, week.isoformat())
        steps = step_seconds(instance, run_id)
        for name in ("mirt_item_params", "mirt_ability", "topic_ability", "weekly_kpi"):
            rows.append((f"  {name}", steps.get(name, float("nan"))))
        rows.append(("mirt_weekly_job (run)", s))
        s, run_id = run(reports, week.isoformat(), report_config)
        rows.append(("report_artifacts_job (run)", s))
        total = time.perf_counter() - t_all

        def metadata(asset: str) -> dict:
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            assert event is not None and event.asset_materialization is not None
            return {k: v.value for k, v in event.asset_materialization.metadata.items()}

        cal, abil, rep = (
            metadata("mirt_item_params"),
            metadata("mirt_ability"),
            metadata("report_artifacts"),
        )
        baseline = None
        if args.baseline:
            config = {
                **quiet,
                "ops": {
                    "mirt_item_params": {"config": {"accelerate": "none", "warm_start": False}}
                },
            }
            job = defs.get_implicit_global_asset_job_def()
            t0 = time.perf_counter()
            with frozen_utc_now(datetime.combine(week + timedelta(days=7), datetime.min.time())):
                result = job.execute_in_process(
                    instance=instance,
                    partition_key=week.isoformat(),
                    run_config=config,
                    asset_selection=[dg.AssetKey("mirt_item_params")],
                )
            assert result.success
            baseline = (time.perf_counter() - t0, metadata("mirt_item_params"))

    for name, s in rows:
        print(f"{name:34s} {s:8.1f} s")
    print(
        f"{'total':34s} {total:8.1f} s   (goal <= {GOAL_SECONDS:.0f} s on PostgreSQL: "
        f"{'MET' if total <= GOAL_SECONDS else 'MISSED'})"
    )
    print(
        f"calibration: {cal['responses']:,} responses, {cal['iterations']} E-steps "
        f"({cal['accelerate']}, {cal['warm_start_items']} items warm), converged "
        f"{cal['converged']}; read {cal['read_seconds']} s, fit {cal['fit_seconds']} s"
    )
    students = int(abil.get("students", 0))
    print(f"abilities: {students:,} students, per-student events {abil.get('per_student_events')}")
    print(
        f"reports: {rep['students_succeeded']:,} of {rep['students_eligible']:,} active students, "
        f"{rep['rows_recorded']:,} files, {rep['bytes_written'] / 2**20:,.0f} MiB; per-student "
        f"events {rep.get('per_student_events')}"
    )
    if baseline is not None:
        s, meta = baseline
        print(
            f"baseline calibration (plain EM, cold): {s:.1f} s, {meta['iterations']} E-steps, "
            f"read {meta['read_seconds']} s, fit {meta['fit_seconds']} s; "
            f"fit ratio baseline / ours {meta['fit_seconds'] / max(cal['fit_seconds'], 1e-9):.1f}x"
        )
    host = make_url(ADMIN_URL).host
    print(f"peak RSS (this process): {peak_rss_mb():,.0f} MiB; PostgreSQL on {host}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)
