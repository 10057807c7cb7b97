"""Poison rows SQLite can hold (it stores any value in any column), written with raw SQL.

The embedded SQLite warehouse must be as safe as PostgreSQL: a value of the wrong type is
quarantined with its raw value (reason ``unparseable_value``), a number in ``attempted_at`` is
filed under the day it denotes (``numeric_timestamp``), every text form of a timestamp lands in
its own UTC day, and ``attempts_reconcile`` still balances (source rows = valid + rejected).
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import select

from seedtest_assets.core.features_topic_daily.pipeline import (
    materialize_features,
    source_row_count,
    stored_feature_stats,
    stored_rejected_rows,
)
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.attempts.checks import attempts_undatable_or_duplicate
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets_tests.factories import DAY, insert_raw_attempts, seed_reference

NOW = datetime(2026, 3, 10)


def run_days(engine, start: date, end: date):
    return materialize_features(engine, start, end, now=NOW)


def reconciles(engine, start: date, end: date) -> bool:
    source = source_row_count(engine, start, end)
    stored = stored_feature_stats(engine, start, end)["attempts"]
    return source == stored + stored_rejected_rows(engine, start, end)


def rejects(engine) -> pl.DataFrame:
    with engine.connect() as conn:
        return read_frame(conn, select(s.attempt_rejects).order_by("attempt_id", "reason"))


@pytest.fixture
def engine(sqlite_url):
    seed_reference(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def test_text_in_an_integer_column_is_quarantined_with_its_raw_value(sqlite_url, engine):
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1},
            {"id": 2, "response_time_ms": "abc"},
            {"id": 3, "hints_used": "two"},
            {"id": 4, "hints_used": 1.5},  # a fraction in an integer column (stored as REAL)
            {"id": 5, "item_id": "100"},  # the text id of item 100: fine
            # Ids are text: a text user id is an id (of no student here), not a bad value.
            {"id": 6, "user_id": "student-1"},
        ],
    )
    run = run_days(engine, DAY, DAY + timedelta(days=1))  # used to raise a bare polars error

    assert (run.source_rows, run.valid_rows, run.rejected_rows) == (6, 2, 4)
    bad = rejects(engine)
    assert bad.select("attempt_id", "reason").rows() == [
        (2, "unparseable_value"),
        (3, "unparseable_value"),
        (4, "unparseable_value"),
        (6, "unknown_user"),
    ]
    details = dict(zip(bad["attempt_id"], bad["detail"], strict=True))
    assert details[2] == "response_time_ms='abc'"
    assert details[3] == "hints_used='two'"
    assert details[4] == "hints_used='1.5'"
    assert details[6] == "user_id=student-1"
    assert '"response_time_ms":"abc"' in bad["raw"][0]  # the raw value itself is kept
    assert set(bad["partition_date"]) == {DAY}
    assert reconciles(engine, DAY, DAY + timedelta(days=1))


def test_is_correct_must_be_exactly_true_or_false(sqlite_url, engine):
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1, "is_correct": 1},
            {"id": 2, "is_correct": 0},
            {"id": 3, "is_correct": True},  # the driver writes 1
            {"id": 4, "is_correct": "1"},  # numeric affinity turns '1' into 1
            {"id": 5, "is_correct": "no"},  # used to count as correct
            {"id": 6, "is_correct": 2},  # used to be accepted
            {"id": 7, "is_correct": "true"},
            {"id": 8, "is_correct": -1},
        ],
    )
    run = run_days(engine, DAY, DAY + timedelta(days=1))
    with engine.connect() as conn:
        feats = read_frame(conn, select(s.features_topic_daily))
    assert run.valid_rows == 4
    assert feats.select("attempts", "correct").rows() == [(4, 3)]
    bad = rejects(engine)
    assert bad["attempt_id"].to_list() == [5, 6, 7, 8]
    assert set(bad["reason"]) == {"unparseable_value"}
    assert bad["detail"].to_list() == [
        "is_correct='no'",
        "is_correct='2'",
        "is_correct='true'",
        "is_correct='-1'",
    ]
    assert reconciles(engine, DAY, DAY + timedelta(days=1))


@pytest.mark.parametrize(
    ("stored", "day", "parsed"),
    [
        ("2026-03-02 00:00:00", DAY, datetime(2026, 3, 2)),  # used to fall into 03-01
        ("2026-03-02 00:00:00.000000", DAY, datetime(2026, 3, 2)),
        ("2026-03-02T00:00:00", DAY, datetime(2026, 3, 2)),
        ("2026-03-02 00:00:00.5", DAY, datetime(2026, 3, 2, 0, 0, 0, 500_000)),
        ("2026-03-02T23:59:59.999999", DAY, datetime(2026, 3, 2, 23, 59, 59, 999_999)),
        ("2026-03-01 23:59:59", DAY - timedelta(days=1), datetime(2026, 3, 1, 23, 59, 59)),
        ("2026-03-03 00:00:00", DAY + timedelta(days=1), datetime(2026, 3, 3)),
    ],
)
def test_every_text_form_of_a_timestamp_lands_in_its_own_day(
    sqlite_url, engine, stored, day, parsed
):
    insert_raw_attempts(sqlite_url, [{"id": 1, "attempted_at": stored}])
    runs = {
        d: run_days(engine, d, d + timedelta(days=1))
        for d in (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1))
    }
    assert {d: r.valid_rows for d, r in runs.items()} == {d: int(d == day) for d in runs}
    with engine.connect() as conn:
        feats = read_frame(conn, select(s.features_topic_daily))
    assert feats.select("date", "attempts", "last_attempt_at").rows() == [(day, 1, parsed)]
    assert rejects(engine).height == 0
    for d in runs:
        assert reconciles(engine, d, d + timedelta(days=1))


def _epoch(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


def test_a_number_in_attempted_at_is_quarantined_under_the_day_it_denotes(sqlite_url, engine):
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1},
            {"id": 2, "attempted_at": _epoch(datetime(2026, 3, 2, 9))},  # Unix seconds
            {"id": 3, "attempted_at": _epoch(datetime(2026, 3, 2, 10)) * 1000},  # milliseconds
            {"id": 4, "attempted_at": _epoch(datetime(2026, 3, 2, 11)) + 0.5},  # REAL seconds
            {"id": 5, "attempted_at": _epoch(datetime(2026, 3, 3, 0))},  # the next day's midnight
        ],
    )
    day = run_days(engine, DAY, DAY + timedelta(days=1))  # used to lose them without trace
    nxt = run_days(engine, DAY + timedelta(days=1), DAY + timedelta(days=2))
    assert (day.source_rows, day.valid_rows, day.rejected_rows) == (4, 1, 3)
    assert (nxt.source_rows, nxt.valid_rows, nxt.rejected_rows) == (1, 0, 1)
    bad = rejects(engine)
    assert bad.select("partition_date", "attempt_id", "reason").rows() == [
        (DAY, 2, "numeric_timestamp"),
        (DAY, 3, "numeric_timestamp"),
        (DAY, 4, "numeric_timestamp"),
        (DAY + timedelta(days=1), 5, "numeric_timestamp"),
    ]
    assert bad["detail"][0] == "attempted_at=1772442000 (read as 2026-03-02 09:00:00 UTC)"
    assert bad["detail"][1] == "attempted_at=1772445600000 (read as 2026-03-02 10:00:00 UTC)"
    assert reconciles(engine, DAY, DAY + timedelta(days=2))


def test_undatable_text_and_non_integer_ids_are_reported_by_the_source_check(sqlite_url, engine):
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1},
            {"id": 2, "attempted_at": "yesterday"},  # in no day: like a NULL
            {"id": 3, "attempted_at": None},
            {"id": "x-4"},  # an id no reject record can carry
            {"id": 5, "attempted_at": "2026-03-02 25:00:00"},  # dated 03-02, but no time
        ],
    )
    run = run_days(engine, DAY, DAY + timedelta(days=1))
    assert (run.source_rows, run.valid_rows, run.rejected_rows) == (2, 1, 1)
    assert rejects(engine).select("attempt_id", "reason", "detail").rows() == [
        (5, "unparseable_value", "attempted_at='2026-03-02 25:00:00'")
    ]
    assert reconciles(engine, DAY, DAY + timedelta(days=1))

    check = attempts_undatable_or_duplicate(warehouse=WarehouseResource(database_url=sqlite_url))
    meta = {k: getattr(v, "value", v) for k, v in check.metadata.items()}
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert meta["null_attempted_at"] == 1
    assert meta["undatable_attempted_at"] == 1
    assert meta["non_integer_ids"] == 1
    assert meta["sample_undatable"] == ["id 2: attempted_at='yesterday'"]
    assert meta["sample_non_integer_ids"] == ["'x-4'"]


def test_bytes_in_a_text_column_are_quarantined_not_a_crash(sqlite_url, engine):
    # SQLite keeps a BLOB in any column; bytes that are not UTF-8 used to fail the driver's
    # decoding of the whole window ("Could not decode to UTF-8 column 'user_id'").
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1},
            {"id": 2, "user_id": b"\xff\xfe"},
            {"id": 3, "session_id": b"s-1"},  # UTF-8 bytes are still bytes, not an id
            {"id": 4, "is_correct": b"\x01"},
            {"id": 5, "item_id": b"\x80", "hints_used": b"\x00"},
            {"id": 6, "attempted_at": b"\xff"},  # undatable: no day owns it
        ],
    )
    run = run_days(engine, DAY, DAY + timedelta(days=1))

    assert (run.source_rows, run.valid_rows, run.rejected_rows) == (5, 1, 4)
    bad = rejects(engine)
    details = {(i, r): d for i, r, d in bad.select("attempt_id", "reason", "detail").rows()}
    assert details == {
        (2, "bad_id"): "user_id: bytes, not text (x'FFFE')",
        (3, "bad_id"): "session_id: bytes, not text (x'732D31')",
        (4, "unparseable_value"): "is_correct=x'01'",
        (5, "bad_id"): "item_id: bytes, not text (x'80')",
        (5, "unparseable_value"): "hints_used=x'00'",
    }
    assert reconciles(engine, DAY, DAY + timedelta(days=1))
    # The whole-table source check names the undatable row without decoding its bytes.
    insert_raw_attempts(sqlite_url, [{"id": b"\xfe"}])  # no day owns a row with no integer id
    check = attempts_undatable_or_duplicate(warehouse=WarehouseResource(database_url=sqlite_url))
    meta = {k: getattr(v, "value", v) for k, v in check.metadata.items()}
    assert not check.passed
    assert meta["sample_undatable"] == ["id 6: attempted_at=x'FF'"]
    assert meta["sample_non_integer_ids"] == ["x'FE'"]
