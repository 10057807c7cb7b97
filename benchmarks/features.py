"""Benchmark: one day of ``features_topic_daily`` for a 100,000-student population on PostgreSQL.

Measures our pipeline end to end (read attempts with validation lookups -> validate ->
aggregate in polars -> replace the day's features and rejects, in one transaction) against a
baseline run in the same process on the same data: the same aggregation done entirely inside
PostgreSQL (``INSERT ... SELECT ... GROUP BY`` with ``percentile_cont`` for the median, the same
validation filters, and the same 7-day improvement window read from the stored features of
the previous days). The baseline does not record rejects; ours does. Both outputs are
compared row by row. The 7 previous days are materialized (untimed) before measuring.

Run:  .venv/bin/python benchmarks/features.py [--users 100000 --weeks 12 --repeat 3]
(first run generates and loads the population, ~2-3 min; later runs reuse it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from common import (
    machine,
    open_population,
    peak_rss_mb,
    population_arguments,
    run_main,
    write_figures,
)
from sqlalchemy import select, text

from seedtest_assets.core.features_topic_daily.pipeline import materialize_features
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s

START = date(2026, 8, 3)  # a fixed Monday so the population is reproducible

BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_features_sql (LIKE features_topic_daily INCLUDING ALL)
"""

# The whole feature computation inside PostgreSQL. Validation filters mirror
# seedtest_assets.core.attempts.validate (duplicates: ids that occur once, or identical copies).
BASELINE_SQL = """
WITH raw AS (
    SELECT a.*, i.topic_id AS item_topic_id, u.user_id AS known_user
    FROM attempts a
    LEFT JOIN users u ON u.user_id = a.user_id
    LEFT JOIN items i ON i.item_id = a.item_id
    WHERE a.attempted_at >= :lo AND a.attempted_at < :hi
),
valid AS (
    SELECT DISTINCT ON (id) *
    FROM raw
    WHERE user_id IS NOT NULL AND session_id IS NOT NULL AND item_id IS NOT NULL
      AND topic_id IS NOT NULL AND is_correct IS NOT NULL AND response_time_ms IS NOT NULL
      AND hints_used IS NOT NULL AND attempted_at IS NOT NULL
      AND known_user IS NOT NULL AND item_topic_id = topic_id
      AND response_time_ms BETWEEN 0 AND 3600000 AND hints_used >= 0
      AND attempted_at <= :future
    ORDER BY id
),
daily AS (
    SELECT user_id, topic_id, attempted_at::date AS date,
           count(*) AS attempts,
           sum(is_correct::int) AS correct,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS rt_median,
           sum(hints_used) AS hints,
           max(attempted_at) AS last_attempt_at,
           sum(response_time_ms) AS study_ms
    FROM valid
    GROUP BY user_id, topic_id, attempted_at::date
),
prior AS (
    SELECT d.user_id, d.topic_id, d.date,
           sum(q.attempts) AS attempts, sum(q.correct) AS correct
    FROM daily d
    JOIN features_topic_daily q ON q.user_id = d.user_id AND q.topic_id = d.topic_id
                AND q.date < d.date AND q.date >= d.date - 7
    GROUP BY d.user_id, d.topic_id, d.date
)
INSERT INTO bench_features_sql
SELECT d.date, d.user_id, d.topic_id, d.attempts, d.correct,
       d.correct::float8 / d.attempts AS accuracy, d.rt_median, d.hints,
       d.correct::float8 / d.attempts - p.correct::float8 / p.attempts AS improvement,
       d.last_attempt_at, :now, d.study_ms
FROM daily d
LEFT JOIN prior p USING (user_id, topic_id, date)
WHERE d.date >= :day_lo AND d.date < :day_hi
"""


def run_baseline(engine, day: date, now: datetime) -> float:
    lo = datetime.combine(day, datetime.min.time())
    hi = datetime.combine(day + timedelta(days=1), datetime.min.time())
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = '600s'"))  # never hang a benchmark
        conn.execute(text("DELETE FROM bench_features_sql WHERE date = :d"), {"d": day})
        conn.execute(
            text(BASELINE_SQL),
            {
                "lo": lo,
                "hi": hi,
                "future": now + timedelta(minutes=5),
                "now": now,
                "day_lo": day,
                "day_hi": day + timedelta(days=1),
            },
        )
    return time.perf_counter() - t0


def compare(engine, day: date) -> tuple[int, float]:
    """Rows in our output and the max absolute difference to the baseline's numbers."""
    cols = [
        "user_id",
        "topic_id",
        "attempts",
        "correct",
        "accuracy",
        "rt_median",
        "hints",
        "improvement",
        "study_ms",
    ]
    with engine.connect() as conn:
        ours = read_frame(
            conn,
            select(*[s.features_topic_daily.c[c] for c in cols]).where(
                s.features_topic_daily.c.date == day
            ),
        )
        base = pl.read_database(
            text(f"SELECT {', '.join(cols)} FROM bench_features_sql WHERE date = :d"),
            conn,
            execute_options={"parameters": {"d": day}},
        )
    if ours.height != base.height:
        raise SystemExit(f"row counts differ: ours {ours.height}, in-database {base.height}")
    j = ours.join(base, on=["user_id", "topic_id"], suffix="_sql")
    if j.height != ours.height:
        raise SystemExit("keys differ between ours and the in-database baseline")
    diffs = [
        (j[c].cast(pl.Float64) - j[f"{c}_sql"].cast(pl.Float64)).abs().max() or 0.0
        for c in cols[2:]
    ]
    nulls_agree = (j["improvement"].is_null() == j["improvement_sql"].is_null()).all()
    if not nulls_agree:
        raise SystemExit("improvement nulls differ")
    return ours.height, max(diffs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    population_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    print(f"machine: {machine()}")
    url = open_population(args, START)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(BASELINE_TABLE))
    day = START + timedelta(weeks=min(5, args.weeks - 1), days=2)  # a mid-period Wednesday
    now = datetime.now(UTC).replace(tzinfo=None)

    # The previous 7 days' features are the history `improvement` reads (untimed set-up).
    materialize_features(engine, day - timedelta(days=7), day, now=now)

    ours, base, detail = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        run = materialize_features(engine, day, day + timedelta(days=1), now=now)
        ours.append(time.perf_counter() - t0)
        detail.append(run.seconds)
        base.append(run_baseline(engine, day, now))
    rows, maxdiff = compare(engine, day)
    med_ours, med_base = statistics.median(ours), statistics.median(base)
    last = detail[-1]
    print(
        f"day {day}: {run.source_rows:,} attempts in the day "
        f"(+ stored features of the 7 prior days), {rows:,} feature rows, "
        f"{run.rejected_rows} rejected; max |ours - in-db| = {maxdiff:.2e}"
    )
    print(
        f"ours (polars, end to end):   median {med_ours:.3f} s of {args.repeat} "
        f"[read {last['read']:.3f}, compute {last['compute']:.3f}, write {last['write']:.3f}]"
    )
    print(f"in-database INSERT..SELECT:  median {med_base:.3f} s of {args.repeat}")
    print(f"ratio ours / in-database:    {med_ours / med_base:.2f}x   (goal <= 1.0x and < 5 s)")
    print(f"peak RSS: {peak_rss_mb():.0f} MiB")
    write_figures(args, seconds=med_ours, baseline_seconds=med_base, rows=rows)
    engine.dispose()
    return 0


if __name__ == "__main__":
    run_main(main)
