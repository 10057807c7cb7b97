"""Benchmark: the cost of text identifiers through the pipeline, against an integer-id baseline.

Runs ``features.py``, ``kpi.py`` and ``online.py`` on two populations of the same size, seed
and period that differ only in their ids: product-like text (``u-000123``, ``i-00042``,
``s-00001234``: the default since migration 0008) and an integer-id baseline. The baseline is
either

- ``--integer-tree PATH``: a checkout of the code before text ids (e.g. ``git worktree add
  /tmp/pre0008 93b47c2``), whose schema and code hold true integer ids, run with its own
  benchmarks on its own database (``<database>_pre0008``); its printed figures are parsed.
  This is the honest "integer ids" figure (it also has that code's id-order sensor cursor);
- otherwise this code on bare-digit ids (``"123"``, TEXT columns: the shape of a warehouse
  migrated from integer ids), which isolates the cost of longer ids.

Each benchmark runs as its own process per id style (its peak RSS is its own), alternating the
order, and the figures come back through ``--json`` (or the old tree's printout).

Goals (issue 14): each time within 1.25x of the integer-id figure, peak memory within 1.5x.

Run:  .venv/bin/python benchmarks/ids.py [--users 100000 --weeks 12] [--only features,kpi]
(the first run generates and loads both populations, ~3 min each; later runs reuse them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, run_main

HERE = Path(__file__).resolve().parent
#: benchmark -> (extra arguments, the figures compared: key -> label)
BENCHMARKS: dict[str, tuple[list[str], dict[str, str]]] = {
    "features": (["--repeat", "5"], {"seconds": "one day, end to end (median)"}),
    "kpi": (["--repeat", "3", "--sample", "200"], {"seconds": "KPIs of a week (median)"}),
    "online": (
        ["--burst", "1000", "--pending", "100000", "--baseline", "2"],
        {
            "rescore_run_seconds": "burst: the re-score run, start -> end",
            "backlog_evaluation_seconds": "backlog: sensor evaluation, 100k pending",
            "max_tick_seconds": "longest sensor tick",
        },
    ),
}
TIME_GOAL, MEMORY_GOAL = 1.25, 1.5


#: benchmark -> figure -> pattern of the printed line holding it (the pre-0008 benchmarks).
PRINTED: dict[str, dict[str, str]] = {
    "features": {"seconds": r"ours \(polars, end to end\):\s+median ([0-9.]+) s"},
    "kpi": {"seconds": r"ours \(set-based, end to end\): median ([0-9.]+) s"},
    "online": {
        "rescore_run_seconds": r"\| burst: run \w+ students / status / start->end \|"
        r" [0-9,]+ / \w+ / ([0-9.]+) s \|",
        "backlog_evaluation_seconds": r"\| backlog: same evaluation re-run in this process"
        r" \([0-9,]+ pending\) \| ([0-9.]+) s",
        "max_tick_seconds": r"\| all \d+ ticks: max / median duration \| ([0-9.]+) s",
    },
}
_RSS = r"peak RSS:? ([0-9.]+) MiB"


def run_old(name: str, tree: Path, args: argparse.Namespace) -> dict:
    """Run the pre-0008 checkout's ``benchmarks/<name>.py`` (integer ids); parse its figures."""
    extra, _ = BENCHMARKS[name]
    database = {"online": "seedtest_bench_online"}.get(name, "seedtest_bench") + "_pre0008"
    cmd = [
        sys.executable,
        str(tree / "benchmarks" / f"{name}.py"),
        "--users",
        str(args.users),
        "--weeks",
        str(args.weeks),
        "--database",
        database,
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} (pre-0008 tree) failed: {proc.stderr.strip()[-2000:]}")
    figures: dict = {"id_style": "integer (pre-0008 code)"}
    for key, pattern in {**PRINTED[name], "peak_rss_mb": _RSS}.items():
        found = re.search(pattern, proc.stdout)
        if found is None:
            raise RuntimeError(f"{name} (pre-0008 tree): no {key} in its output")
        figures[key] = float(found.group(1))
    figures["wall_seconds"] = time.monotonic() - t0
    print(f"  {name:<9} integer  (pre-0008 tree) done in {figures['wall_seconds']:.0f} s")
    return figures


def run_one(name: str, style: str, args: argparse.Namespace) -> dict:
    """Run ``benchmarks/<name>.py`` on the ``style`` population; its ``--json`` figures."""
    if style == "integer" and args.integer_tree:
        return run_old(name, Path(args.integer_tree), args)
    extra, _ = BENCHMARKS[name]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    cmd = [
        sys.executable,
        str(HERE / f"{name}.py"),
        "--users",
        str(args.users),
        "--weeks",
        str(args.weeks),
        "--id-style",
        style,
        "--json",
        str(out),
        *extra,
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} ({style} ids) failed: {proc.stderr.strip()[-2000:]}")
    figures = json.loads(out.read_text())
    out.unlink()
    figures["wall_seconds"] = time.monotonic() - t0
    print(f"  {name:<9} {style:<8} done in {figures['wall_seconds']:.0f} s", flush=True)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    ap.add_argument(
        "--integer-tree",
        default="",
        help="a checkout of the code before text ids: its benchmarks are the integer baseline",
    )
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")
    print(f"machine: {machine()}; {args.users:,} students x {args.weeks} weeks", flush=True)
    baseline = (
        f"the pre-0008 code in {args.integer_tree}"
        if args.integer_tree
        else "bare-digit ids on this code"
    )
    print(f"integer-id baseline: {baseline}", flush=True)

    rows, failed = [], []
    for i, name in enumerate(names):
        # Alternate which style goes first, so a warming cache or a busy neighbour does not
        # always favour the same one. The first run of a population also loads it (untimed
        # inside the benchmark) and KPI set-up; a second KPI run measures the KPIs alone.
        order = ["integer", "text"] if i % 2 == 0 else ["text", "integer"]
        try:
            got = {style: run_one(name, style, args) for style in order}
            if name == "kpi":
                got = {style: run_one(name, style, args) for style in order}
        except RuntimeError as exc:  # the other benchmarks' figures still count
            print(f"  {name}: FAILED: {exc}", flush=True)
            failed.append(f"{name}: did not run")
            continue
        _, labels = BENCHMARKS[name]
        for key, label in {**labels, "peak_rss_mb": "peak RSS, MiB"}.items():
            base, text = got["integer"][key], got["text"][key]
            ratio = text / base if base else float("nan")
            goal = MEMORY_GOAL if key == "peak_rss_mb" else TIME_GOAL
            ok = ratio <= goal
            rows.append((name, label, base, text, ratio, goal, ok))
            if not ok:
                failed.append(f"{name}: {label} {ratio:.2f}x > {goal}x")

    print("\n| benchmark | figure | integer ids | text ids | text / integer | goal |")
    print("|---|---|---|---|---|---|")
    for name, label, base, text, ratio, goal, ok in rows:
        unit = "" if "MiB" in label else " s"
        print(
            f"| {name} | {label} | {base:.2f}{unit} | {text:.2f}{unit} | {ratio:.2f}x | "
            f"<= {goal}x {'PASS' if ok else 'FAIL'} |"
        )
    if failed:
        print("\nover the goal: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
