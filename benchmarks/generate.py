"""Benchmark: generate a synthetic population and bulk-load it into PostgreSQL.

What it measures, in one process and one run:

1. generation: wall seconds of ``generate(SyntheticConfig(users, weeks, seed, start))``
   (pure numpy/polars, no database);
2. load: wall seconds of ``load(engine, pop, replace=True)`` per table (TRUNCATE, binary COPY,
   secondary-index rebuild and ANALYZE, all in one transaction), rows and rows/s;
3. peak RSS of the process (``resource.getrusage``);
4. a baseline measured in the same run: plain SQLAlchemy ``executemany``
   (``conn.execute(attempts.insert(), frame.to_dicts())``) of the first 200,000 attempts into
   the emptied, indexed ``attempts`` table, inside a transaction that is rolled back (the
   loaded data survives), extrapolated linearly to all attempts; printed as a ratio against
   our attempts load. Linear extrapolation flatters the baseline (its index inserts get
   slower as the table grows).

Goal: 100,000 students x 12 weeks (~10M attempts) generated and loaded in < 3 minutes on 2
cores.

Run:  .venv/bin/python benchmarks/generate.py [--users 100000 --weeks 12 --seed 7]
      [--database seedtest_bench | --database-url postgresql://...]

By default it uses database ``seedtest_bench`` on 127.0.0.1:5432 (created if missing and
migrated). It loads the very population ``benchmarks/features.py`` uses (same fixed start)
and stamps the database with the same marker, so that benchmark can reuse it.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ensure_database, machine, peak_rss_mb, run_main
from sqlalchemy import text

from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.warehouse import schema as s

# The fixed Monday benchmarks/features.py uses, so one load serves both benchmarks.
START = date(2026, 8, 3)

BASELINE_ROWS = 200_000


def baseline_executemany(engine, frame) -> float:
    """Seconds for plain SQLAlchemy executemany of ``frame`` into an empty ``attempts``.

    Runs in a transaction that is rolled back: TRUNCATE is transactional on PostgreSQL, so the
    loaded attempts are back afterwards.
    """
    conn = engine.connect()
    tx = conn.begin()
    try:
        conn.execute(text("TRUNCATE TABLE attempts"))
        t0 = time.perf_counter()
        conn.execute(s.attempts.insert(), frame.to_dicts())
        return time.perf_counter() - t0
    finally:
        tx.rollback()
        conn.close()


def stamp_population(engine, users: int, weeks: int, seed: int) -> None:
    """Mark the database as holding this population (same marker as common.py writes)."""
    marker = f"seedtest population users={users} weeks={weeks} seed={seed} start={START}"
    name = engine.url.database
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # COMMENT takes no bind parameters; the marker is built from integers and a date,
        # the name is quoted by the dialect.
        quoted = conn.dialect.identifier_preparer.quote(name)
        conn.execute(text(f"COMMENT ON DATABASE {quoted} IS '{marker}'"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--database", default="seedtest_bench", help="local database to use")
    ap.add_argument("--database-url", default=None, help="a PostgreSQL URL (overrides)")
    args = ap.parse_args()

    if args.database_url:
        url = args.database_url
        upgrade(url)
    else:
        url = ensure_database(args.database)
    engine = make_engine(url)
    if engine.dialect.name != "postgresql":
        raise SystemExit("this benchmark measures PostgreSQL loading; give a postgresql:// URL")
    print(f"machine: {machine()}")

    cfg = SyntheticConfig(n_users=args.users, weeks=args.weeks, seed=args.seed, start=START)
    t0 = time.perf_counter()
    pop = generate(cfg)
    t_gen = time.perf_counter() - t0
    n_att = pop.attempts.height
    print(
        f"generate: {args.users:,} students x {args.weeks} weeks "
        f"({pop.start} .. {pop.end}), {n_att:,} attempts in {t_gen:.1f} s "
        f"({n_att / t_gen:,.0f} attempts/s)"
    )

    per_table: list[tuple[str, int, float]] = []
    t0 = time.perf_counter()
    load(engine, pop, replace=True, progress=lambda *row: per_table.append(row))
    t_load = time.perf_counter() - t0
    rows = sum(r for _, r, _ in per_table)
    print(f"load (one transaction): {rows:,} rows in {t_load:.1f} s ({rows / t_load:,.0f} rows/s)")
    for name, n, sec in per_table:
        rate = f"{n / sec:>12,.0f} rows/s" if sec > 0 else ""
        print(f"  {name:<20} {n:>12,} rows {sec:8.2f} s {rate}")
    print(f"generate + load: {t_gen + t_load:.1f} s   (goal < 180 s)")
    print(f"peak RSS: {peak_rss_mb():,.0f} MiB")

    t_att = next(sec for name, _, sec in per_table if name == "attempts")
    base_rows = min(BASELINE_ROWS, n_att)
    t_base = baseline_executemany(engine, pop.attempts.head(base_rows))
    t_base_all = t_base * n_att / base_rows
    print(
        f"baseline executemany: {base_rows:,} attempts in {t_base:.1f} s "
        f"({base_rows / t_base:,.0f} rows/s) -> {n_att:,} extrapolated {t_base_all:.0f} s"
    )
    print(f"ratio baseline / ours (attempts): {t_base_all / t_att:.1f}x (ours is that much faster)")

    if not args.database_url:
        stamp_population(engine, args.users, args.weeks, args.seed)
    engine.dispose()
    return 0


if __name__ == "__main__":
    run_main(main)
