"""The sensor's reads: keyset cursors over attempts and completed sessions, both backends."""

from datetime import date, datetime, timedelta

import pytest

from seedtest_assets.core.attempts.watch import (
    WatchCursor,
    partition_days,
    read_completed_sessions,
    read_new_attempts,
    start_cursor,
)
from seedtest_assets.core.warehouse import make_engine
from seedtest_assets_tests.factories import (
    DAY,
    at,
    attempts_frame,
    insert_attempts,
    insert_raw_attempts,
    seed_reference,
)
from seedtest_assets_tests.online_factories import insert_sessions

T0 = datetime(2026, 3, 3, 10, 0)


def seed(url: str) -> None:
    seed_reference(url, n_users=3)
    insert_attempts(
        url,
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "attempted_at": at(DAY, 9)},
                {"id": 2, "user_id": 2, "attempted_at": at(DAY, 23, 59)},
                {"id": 3, "user_id": 999, "attempted_at": at(DAY, 10)},  # unknown student
                {"id": 4, "user_id": None, "attempted_at": None},  # unusable row
                {"id": 5, "user_id": 3, "attempted_at": at(DAY + timedelta(days=1), 0, 1)},
                {"id": 5, "user_id": 3, "attempted_at": at(DAY + timedelta(days=1), 0, 1)},
                {"id": 6, "user_id": 1, "attempted_at": at(DAY + timedelta(days=2), 8)},
            ]
        ),
    )
    insert_sessions(
        url,
        [
            {"session_id": 10, "user_id": 1, "started_at": T0, "completed_at": T0},
            {"session_id": 11, "user_id": 2, "started_at": T0, "completed_at": T0},  # tie
            {"session_id": 9, "user_id": 3, "started_at": T0, "completed_at": None},  # open
            {"session_id": 12, "user_id": 1, "started_at": T0,
             "completed_at": T0 + timedelta(minutes=5)},
            {"session_id": 13, "user_id": 3, "started_at": T0,
             "completed_at": T0 + timedelta(hours=1)},
        ],
    )  # fmt: skip


def test_attempts_in_id_order_known_students_and_days(warehouse_url):
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    batch = read_new_attempts(engine, 0, 100)
    assert batch.to_id == 6 and batch.rows == 7 and not batch.full
    assert batch.user_ids == [1, 2, 3]  # 999 is not a student, NULL is nobody
    assert batch.days == [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    assert read_new_attempts(engine, 6, 100).rows == 0
    assert read_new_attempts(engine, 6, 100).to_id == 6
    engine.dispose()


def test_attempt_batches_are_bounded_and_never_split_copies_of_an_id(warehouse_url):
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    first = read_new_attempts(engine, 0, 2)
    assert (first.to_id, first.rows, first.full, first.user_ids) == (2, 2, True, [1, 2])
    # Ids 3, 4, 5 | 5: a limit of 3 would cut the two copies of id 5, so both wait.
    second = read_new_attempts(engine, first.to_id, 3)
    assert (second.to_id, second.rows, second.user_ids) == (4, 2, [])
    third = read_new_attempts(engine, second.to_id, 3)
    assert (third.to_id, third.rows, third.user_ids, third.full) == (6, 3, [1, 3], False)
    # Ids 3, 4, 5, 5 | 6: the limit of 4 ends after the last copy.
    assert read_new_attempts(engine, 2, 4).to_id == 5
    # More copies than the limit: the cursor still moves on (no endless loop).
    assert read_new_attempts(engine, 4, 1).to_id == 5
    engine.dispose()


def test_sessions_keyset_ties_open_sessions_and_settle(warehouse_url):
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    until = T0 + timedelta(minutes=30)  # session 13 completed later: not yet
    first = read_completed_sessions(engine, WatchCursor(), until, 2)
    assert (first.completed_at, first.session_id, first.user_ids) == (T0, 11, [1, 2])
    assert first.full
    cur = WatchCursor(completed_at=first.completed_at, session_id=first.session_id)
    second = read_completed_sessions(engine, cur, until, 2)
    assert (second.session_id, second.sessions, second.user_ids, second.full) == (12, 1, [1], False)
    cur = WatchCursor(completed_at=second.completed_at, session_id=second.session_id)
    assert read_completed_sessions(engine, cur, until, 2).sessions == 0
    later = read_completed_sessions(engine, cur, T0 + timedelta(hours=2), 2)
    assert later.user_ids == [3] and later.session_id == 13
    # Mid-tie cursor: session 10 done, 11 (same completed_at) still to come.
    tie = read_completed_sessions(engine, WatchCursor(completed_at=T0, session_id=10), until, 5)
    assert tie.user_ids == [1, 2] and tie.sessions == 2
    engine.dispose()


def test_start_cursor_is_now(warehouse_url):
    engine = make_engine(warehouse_url)
    assert start_cursor(engine, T0) == WatchCursor(0, None, 0)
    engine.dispose()
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    cur = start_cursor(engine, T0 + timedelta(minutes=10))
    assert cur == WatchCursor(attempt_id=6, completed_at=T0 + timedelta(minutes=5), session_id=12)
    assert start_cursor(engine, T0) == WatchCursor(6, T0, 11)  # highest id among the tie
    engine.dispose()


def test_cursor_json_round_trip_and_errors():
    cur = WatchCursor(42, datetime(2026, 3, 3, 10, 0, 0, 123456), 7)
    assert WatchCursor.from_json(cur.to_json()) == cur
    assert WatchCursor.from_json(WatchCursor().to_json()) == WatchCursor()
    for bad in ("42", "not json", '{"v": 2, "attempt_id": 1}', "[]"):
        with pytest.raises(ValueError):
            WatchCursor.from_json(bad)


def test_partition_days_keeps_complete_days_only():
    days = [date(2024, 12, 31), date(2025, 1, 6), date(2026, 3, 2), date(2026, 3, 3)]
    assert partition_days(days, date(2025, 1, 6), date(2026, 3, 2)) == days[1:3]
    assert partition_days(days, date(2025, 1, 6), None) == []


def test_unreadable_rows_are_skipped_and_reported_not_fatal(sqlite_url):
    """SQLite holds anything: a number or text in ``attempted_at``, text in ``user_id`` or
    ``id``. The batch skips what it cannot read, reports it, and still moves on."""
    seed_reference(sqlite_url, n_users=3)
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1},
            {"id": 2, "attempted_at": 1772528400},  # Unix seconds: 2026-03-03 09:00 UTC
            {"id": 3, "attempted_at": "yesterday"},
            {"id": 4, "user_id": "abc"},
            {"id": "x-5"},  # not an integer id: never read (the source check reports it)
            {"id": 6, "user_id": 2, "attempted_at": "2026-03-04T08:00:00"},
        ],
    )
    engine = make_engine(sqlite_url)
    batch = read_new_attempts(engine, 0, 100)  # used to raise TypeError (fromisoformat)
    assert (batch.to_id, batch.rows, batch.user_ids) == (6, 5, [1, 2])
    # The numeric timestamp's day is requested: that day's run quarantines the row.
    assert batch.days == [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    assert batch.bad == [
        "id 2: attempted_at=1772528400 (read as 2026-03-03 09:00:00 UTC)",
        "id 3: attempted_at='yesterday'",
        "id 4: user_id='abc'",
    ]
    assert start_cursor(engine, T0).attempt_id == 6  # max(id) skips the text id
    engine.dispose()
