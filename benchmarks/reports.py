"""Benchmark: weekly reports (HTML + PDF per student) for 1,000 students, local and S3.

Set-up (not timed): a synthetic population (``--users`` students x 8 weeks) in a temporary
SQLite warehouse, weekly calibration and scoring of every week (the θ history), the report
week's stored topic θ (``topic_ability``, which the reports read), and stand-in
``weekly_kpi`` rows for the report week (derived from the scores; the KPI asset is a separate
issue). Every student is rendered (``active_only=False``), so exactly ``--users`` reports.

Timed, in one run:

1. ``run_batch`` to the local store (``$tmp/reports``): select + read + templates + render +
   write + record, with ``--workers`` processes.
2. The same to S3: a moto server over HTTP on 127.0.0.1 (``ThreadedMotoServer``, in this
   process), a fresh bucket; presigned URLs recorded.
3. Where the time goes, in one process: content + charts, HTML fill, PDF compile per report.
4. Charts: our SVG builder against one matplotlib SVG figure (if matplotlib is installed:
   ``pip install -e ".[bench]"``).
5. Baseline, the Quarto-like route: per report, new processes for pandoc -> HTML, pandoc ->
   typst, and typst -> PDF (data-mode filter, what ``quarto render`` does per document), one
   report after another as the original did, on ``--baseline-sample`` students, extrapolated.

Seconds per report = wall time of the whole batch / students (one report = HTML + PDF).
Peak memory: this process (ru_maxrss) and the largest worker process (RUSAGE_CHILDREN).

Run:  .venv/bin/python benchmarks/reports.py [--users 1000 --workers 2 --baseline-sample 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, peak_rss_mb, run_main

GOAL_S_PER_REPORT = 0.1
ORIGINAL_S_PER_REPORT = 10.0  # the original's lower bound (10-30 s)


def children_peak_mb() -> float:
    """Peak RSS of the largest finished child process (workers, pandoc, typst), MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def build_warehouse(tmp: Path, users: int, seed: int):
    """A SQLite warehouse with ``users`` students x 8 weeks, scored weekly, with KPI rows."""
    import polars as pl

    from seedtest_assets.core.mirt_ability.pipeline import score_week
    from seedtest_assets.core.mirt_item_params.pipeline import calibrate_week
    from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
    from seedtest_assets.core.topic_ability.pipeline import (
        materialize_week as materialize_topic_ability,
    )
    from seedtest_assets.core.warehouse import make_engine, read_frame, transaction, upgrade
    from seedtest_assets.core.warehouse import schema as s

    url = f"sqlite:///{tmp / 'warehouse.db'}"
    upgrade(url)
    engine = make_engine(url)
    pop = generate(SyntheticConfig(n_users=users, weeks=8, seed=seed))
    load(engine, pop)
    weeks = [pop.start + timedelta(weeks=i) for i in range(8)]
    now = datetime.combine(pop.end, datetime.min.time()) + timedelta(hours=4)
    for w in weeks:
        calibrate_week(engine, w, now=now)
        score_week(engine, w, now=now)
    week = weeks[-1]
    # The reports read the week's stored topic θ (the topic_ability asset of the Monday batch).
    materialize_topic_ability(engine, week, now=now)
    # Stand-in KPI rows (θ change, a plausible P and S) so the KPI sentences are rendered.
    with engine.connect() as conn:
        ab = read_frame(
            conn,
            s.mirt_ability.select().where(
                s.mirt_ability.c.week_start.in_([week, week - timedelta(weeks=1)]),
                s.mirt_ability.c.source == "weekly",
            ),
        )
    cur = ab.filter(pl.col("week_start") == week)
    prev = ab.filter(pl.col("week_start") == week - timedelta(weeks=1)).select(
        "user_id", pl.col("theta").alias("theta_prev")
    )
    rows = []
    for r in cur.join(prev, on="user_id", how="left").iter_rows(named=True):
        d = None if r["theta_prev"] is None else r["theta"] - r["theta_prev"]
        rows.append(
            {
                "week_start": week,
                "user_id": r["user_id"],
                "updated_at": now,
                "kpis": {
                    "I_t": d,
                    "I_t_se": 0.1,
                    "E_t": 0.04,
                    "P": 0.6,
                    "S": 0.2,
                    "theta": r["theta"],
                    "se": r["se"],
                    "theta_prev": r["theta_prev"],
                    "trend_per_week": 0.05,
                },
            }
        )
    with transaction(engine) as conn:
        conn.execute(s.weekly_kpi.insert(), rows)
    return engine, week, now


def per_stage(engine, week, now, n: int) -> dict[str, float]:
    """Per-report seconds of content+charts, HTML fill and PDF compile in this process."""
    from seedtest_assets.core.report_artifacts.content import build_report
    from seedtest_assets.core.report_artifacts.pipeline import (
        Selection,
        prepare_templates,
        read_inputs,
        select_students,
    )
    from seedtest_assets.core.report_artifacts.render import ReportRenderer

    sel = select_students(engine, week, Selection(max_users=n, active_only=False))
    inputs = read_inputs(engine, week, sel.frame, now=now)
    t0 = time.perf_counter()
    names = [*sel.frame["display_name"].to_list(), *(t.name for i in inputs for t in i.topics)]
    templates = prepare_templates("ko", None, names)
    t_templates = time.perf_counter() - t0
    r = ReportRenderer(templates)
    r.pdf(build_report(inputs[0], "ko", now))  # load the fonts once, as a worker does
    t_content = t_html = t_pdf = 0.0
    for inp in inputs:
        a = time.perf_counter()
        data = build_report(inp, "ko", now)
        b = time.perf_counter()
        r.html(data)
        c = time.perf_counter()
        r.pdf(data)
        d = time.perf_counter()
        t_content, t_html, t_pdf = t_content + b - a, t_html + c - b, t_pdf + d - c
    return {
        "templates_once_s": t_templates,
        "content_ms": 1000 * t_content / len(inputs),
        "html_ms": 1000 * t_html / len(inputs),
        "pdf_ms": 1000 * t_pdf / len(inputs),
    }


def chart_costs(n: int = 200) -> dict[str, float | str]:
    """Microseconds per chart: our SVG builder vs matplotlib (if installed)."""
    from seedtest_assets.core.report_artifacts.charts import TrendPoint, theta_trend_svg

    pts = [TrendPoint(f"{i:02d}-01", 0.1 * i, 0.3) for i in range(12)]
    t0 = time.perf_counter()
    for _ in range(n):
        theta_trend_svg(pts, goal=1.2, title="θ", goal_label="목표 1.20", band_label="95%")
    ours_us = 1e6 * (time.perf_counter() - t0) / n
    out: dict[str, float | str] = {"ours_us": ours_us}
    try:
        t0 = time.perf_counter()
        import io

        import matplotlib

        matplotlib.use("svg")
        import matplotlib.pyplot as plt

        out["mpl_import_s"] = time.perf_counter() - t0
        xs, ys = list(range(12)), [p.theta for p in pts]
        lo, hi = [y - 0.6 for y in ys], [y + 0.6 for y in ys]
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            fig, ax = plt.subplots(figsize=(6.4, 2.3))
            ax.fill_between(xs, lo, hi, alpha=0.4)
            ax.plot(xs, ys, marker="o")
            ax.axhline(1.2, linestyle="--")
            ax.set_xticks(xs, [p.label for p in pts])
            fig.savefig(io.BytesIO(), format="svg")
            plt.close(fig)
            times.append(time.perf_counter() - t0)
        out["mpl_ms"] = 1000 * statistics.median(times)
    except ImportError:
        out["mpl"] = "not installed (pip install -e '.[bench]')"
    return out


def baseline(engine, week, now, sample: int, tmp: Path) -> float:
    """Seconds per report of the Quarto-like per-report subprocess pipeline (median)."""
    from seedtest_assets.core.report_artifacts.content import build_report
    from seedtest_assets.core.report_artifacts.pipeline import (
        Selection,
        read_inputs,
        select_students,
    )
    from seedtest_assets.core.report_artifacts.render import render_via_subprocesses

    sel = select_students(engine, week, Selection(max_users=sample, active_only=False))
    times = []
    for inp in read_inputs(engine, week, sel.frame, now=now):
        data = build_report(inp, "ko", now)
        t0 = time.perf_counter()
        html, pdf = render_via_subprocesses(data, tmp / f"baseline-{inp.user_id}")
        times.append(time.perf_counter() - t0)
        assert html and pdf.startswith(b"%PDF")
    return statistics.median(times)


def report_line(name: str, result, users: int) -> str:
    total = result.seconds["total"]
    per = total / users
    return (
        f"{name:<8} {users} students, {2 * users} files, {result.bytes_written / 2**20:.1f} MiB: "
        f"total {total:.2f} s = {per:.4f} s/report, {60 / per:,.0f} reports/min "
        f"(select+read {result.seconds['select_and_read']:.2f} s, "
        f"templates {result.seconds['templates']:.2f} s, "
        f"render+store {result.seconds['render_and_store']:.2f} s, "
        f"record {result.seconds['record']:.2f} s); failures {len(result.failures)}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-sample", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from seedtest_assets.core.report_artifacts.pipeline import Selection, run_batch
    from seedtest_assets.core.report_artifacts.store import StoreSettings

    print(f"machine: {machine()}")
    print(f"date: {datetime.now().date()}  users: {args.users}  workers: {args.workers}")
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        engine, week, now = build_warehouse(tmp, args.users, args.seed)
        print(
            f"set-up (generate, calibrate + score 8 weeks, topic θ, KPI rows): "
            f"{time.perf_counter() - t0:.1f} s; report week {week}"
        )
        selection = Selection(max_users=args.users, active_only=False)

        local = run_batch(
            engine,
            week,
            selection,
            now=now,
            workers=args.workers,
            store=StoreSettings(local_dir=str(tmp / "home")),
        )
        print(report_line("local", local, local.selected))
        print(
            f"         peak RSS: this process {peak_rss_mb():.0f} MiB, "
            f"largest worker {children_peak_mb():.0f} MiB"
        )

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per PUT

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="ap-northeast-2").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
        )
        s3 = run_batch(
            engine,
            week,
            selection,
            now=now,
            workers=args.workers,
            store=StoreSettings(bucket=bucket, endpoint_url=endpoint),
        )
        print(report_line("s3/moto", s3, s3.selected))
        print(
            f"         peak RSS: this process {peak_rss_mb():.0f} MiB (incl. moto's in-memory "
            f"objects), largest worker {children_peak_mb():.0f} MiB"
        )
        server.stop()

        st = per_stage(engine, week, now, min(100, args.users))
        print(
            f"one process, per report: content+charts {st['content_ms']:.2f} ms, HTML fill "
            f"{st['html_ms']:.2f} ms, PDF (typst) {st['pdf_ms']:.2f} ms; templates once per "
            f"batch {st['templates_once_s']:.2f} s (2 pandoc runs + font subset)"
        )
        ch = chart_costs()
        mpl = (
            f"matplotlib {ch['mpl_ms']:.1f} ms per figure (+{ch['mpl_import_s']:.2f} s import)"
            if "mpl_ms" in ch
            else f"matplotlib {ch['mpl']}"
        )
        print(f"charts: our SVG builder {ch['ours_us']:.0f} µs per chart; {mpl}")

        base = baseline(engine, week, now, args.baseline_sample, tmp)
        print(
            f"baseline (Quarto-like, new processes per report, sequential, "
            f"{args.baseline_sample} reports): {base:.3f} s/report -> "
            f"{base * args.users:.0f} s for {args.users} (extrapolated)"
        )
        per_local = local.seconds["total"] / local.selected
        per_s3 = s3.seconds["total"] / s3.selected
        print(
            f"speed-up vs baseline: local {base / per_local:.0f}x, S3 {base / per_s3:.0f}x; "
            f"vs the original's 10 s: {ORIGINAL_S_PER_REPORT / per_s3:.0f}x (S3)"
        )
        ok = max(per_local, per_s3) <= GOAL_S_PER_REPORT and not local.failures and not s3.failures
        print(f"goal <= {GOAL_S_PER_REPORT} s/report: {'MET' if ok else 'NOT MET'}")
        engine.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main)
