"""A day's features and rejects do not depend on how days were batched (finding 7).

Ids duplicated across days are judged with knowledge of the whole table: every copy of an id
whose copies differ is rejected (``duplicate_id_conflict``), each copy's record filed under its
own day; identical copies (necessarily on one day) keep one. So materializing day by day, as
one range, or as overlapping ranges in any order stores the same rows, and every raw row is
accounted for exactly once.
"""

from datetime import datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import delete, select

from seedtest_assets.core.features_topic_daily.pipeline import (
    materialize_features,
    source_row_count,
    stored_feature_stats,
    stored_rejected_rows,
)
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.factories import DAY, at, attempts_frame, insert_attempts, seed_reference

NOW = datetime(2026, 3, 10)
D1, D2, D3 = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)
END = D3 + timedelta(days=1)

ROWS = [
    # ordinary attempts, students 1-3 on every day (the same topic: `improvement` is set)
    *[
        {"id": 10 * d + u, "user_id": u, "attempted_at": at(day, 9 + u), "is_correct": u != 2}
        for d, day in enumerate((D1, D2, D3), start=1)
        for u in (1, 2, 3)
    ],
    # id 50: one copy on D1, one on D3 (they differ, if only in time)
    {"id": 50, "user_id": 1, "attempted_at": at(D1, 15)},
    {"id": 50, "user_id": 1, "attempted_at": at(D3, 15)},
    # id 51: two identical copies on D2: one is kept
    {"id": 51, "user_id": 2, "attempted_at": at(D2, 16)},
    {"id": 51, "user_id": 2, "attempted_at": at(D2, 16)},
    # id 52: two different copies on D1, a third on D2
    {"id": 52, "user_id": 3, "attempted_at": at(D1, 17)},
    {"id": 52, "user_id": 3, "attempted_at": at(D1, 17), "is_correct": False},
    {"id": 52, "user_id": 3, "attempted_at": at(D2, 17)},
    # id 53: an unknown student's copy on D2 and a copy with no time at all (in no day)
    {"id": 53, "user_id": 999, "attempted_at": at(D2, 18)},
    {"id": 53, "user_id": 1, "attempted_at": None},
]

#: Batchings of D1..D3: (start, end) ranges, run in this order.
BATCHINGS = {
    "day_by_day": [(D1, D2), (D2, D3), (D3, END)],
    "one_range": [(D1, END)],
    "overlapping": [(D1, D3), (D2, END)],
    "overlapping_reversed": [(D2, END), (D1, D3)],
    "backwards_days": [(D3, END), (D2, D3), (D1, D2)],
    "range_then_a_day": [(D1, END), (D1, D2)],
    "range_then_each_day": [(D1, END), (D3, END), (D1, D2), (D2, D3)],
}
#: Batchings that run every day after its earlier days (`improvement` reads the 7 days before
#: a day from the stored features, so out-of-order runs may see fewer of them: by design, the
#: asset depends on its own earlier partitions and Dagster orders them).
IN_ORDER = {"day_by_day", "one_range", "overlapping"}

EXPECTED_REJECTS = [
    (D1, 50, "duplicate_id_conflict", 1),
    (D1, 52, "duplicate_id_conflict", 2),
    (D2, 51, "duplicate_id", 1),
    (D2, 52, "duplicate_id_conflict", 1),
    (D2, 53, "duplicate_id_conflict", 1),
    (D3, 50, "duplicate_id_conflict", 1),
]


def snapshot(engine) -> tuple[pl.DataFrame, pl.DataFrame]:
    f, r = s.features_topic_daily, s.attempt_rejects
    with engine.connect() as conn:
        feats = read_frame(conn, select(f).order_by(f.c.date, f.c.user_id, f.c.topic_id))
        rejects = read_frame(
            conn, select(r).order_by(r.c.partition_date, r.c.attempt_id, r.c.reason)
        )
    return feats.drop("computed_at"), rejects.drop("rejected_at")


@pytest.fixture
def engine(warehouse_url):
    seed_reference(warehouse_url)
    insert_attempts(warehouse_url, attempts_frame(ROWS))
    engine = make_engine(warehouse_url)
    yield engine
    engine.dispose()


def test_every_batching_stores_the_same_features_and_rejects(engine):
    results = {}
    for name, ranges in BATCHINGS.items():
        with engine.begin() as conn:
            conn.execute(delete(s.features_topic_daily))
            conn.execute(delete(s.attempt_rejects))
        for start, end in ranges:
            materialize_features(engine, start, end, now=NOW)
        results[name] = snapshot(engine)

    feats, rejects = results["day_by_day"]
    assert (
        rejects.select("partition_date", "attempt_id", "reason", "rows").rows() == EXPECTED_REJECTS
    )
    # Each record holds the copies of its own day, and says how many the table has.
    conflict_50 = rejects.filter(pl.col("attempt_id") == 50)
    assert conflict_50["detail"].to_list() == ["2 differing copies in the table, 1 on this day"] * 2
    assert conflict_50["raw"][0].count('"id":50') == 1 and "2026-03-02" in conflict_50["raw"][0]
    for name, (f, r) in results.items():
        assert r.equals(rejects), name
        if name in IN_ORDER:
            assert f.equals(feats), name
        else:
            assert f.drop("improvement").equals(feats.drop("improvement")), name


def test_every_raw_row_is_accounted_for_exactly_once(engine):
    materialize_features(engine, D1, END, now=NOW)
    materialize_features(engine, D2, D3, now=NOW)  # a re-run of one day inside the range
    datable = sum(r["attempted_at"] is not None for r in ROWS)
    total = 0
    for day in (D1, D2, D3):
        nxt = day + timedelta(days=1)
        source = source_row_count(engine, day, nxt)
        valid = stored_feature_stats(engine, day, nxt)["attempts"]
        rejected = stored_rejected_rows(engine, day, nxt)
        assert source == valid + rejected, day
        total += source
    assert total == datable == len(ROWS) - 1  # the undatable copy of 53: the source check's
    assert stored_feature_stats(engine, D1, END)["attempts"] == 9 + 1  # ordinary + one of 51
