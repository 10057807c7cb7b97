"""The sensor's reads: keyset cursors over attempts ``(attempted_at, id)`` and completed
sessions ``(completed_at, session_id)``, both backends."""

from datetime import date, datetime, timedelta

import pytest

from seedtest_assets.core.attempts import watch
from seedtest_assets.core.attempts.watch import (
    AttemptBatch,
    WatchCursor,
    attempts_lag,
    features_run_key,
    partition_days,
    read_completed_sessions,
    read_new_attempts,
    start_cursor,
)
from seedtest_assets.core.settings import SettingsError
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
#: Later than every seeded attempt: nothing waits for the lag.
UNTIL = datetime(2026, 3, 10)
D1, D2 = DAY + timedelta(days=1), DAY + timedelta(days=2)


def seed(url: str) -> None:
    """Attempts whose ids are not in time order: (time, id) order is 1, 3, 2, 5, 5, 6, 7, 8."""
    seed_reference(url, n_users=3)
    insert_attempts(
        url,
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "attempted_at": at(DAY, 9)},
                {"id": 2, "user_id": 2, "attempted_at": at(DAY, 23, 59)},
                {"id": 3, "user_id": 999, "attempted_at": at(DAY, 10)},  # unknown student
                {"id": 4, "user_id": None, "attempted_at": None},  # no time: not orderable
                {"id": 5, "user_id": 3, "attempted_at": at(D1, 0, 1)},
                {"id": 5, "user_id": 3, "attempted_at": at(D1, 0, 1)},  # a copy
                {"id": 8, "user_id": 2, "attempted_at": at(D2, 8)},
                {"id": 6, "user_id": 1, "attempted_at": at(D2, 8)},  # same instant as 7, 8
                {"id": 7, "user_id": 3, "attempted_at": at(D2, 8)},
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


def walk(engine, cursor: WatchCursor, until: datetime, limit: int) -> list[AttemptBatch]:
    """Batches from ``cursor`` until one reads nothing (that one excluded)."""
    out = []
    for _ in range(50):
        batch = read_new_attempts(engine, cursor, until, limit)
        if batch.rows == 0:
            assert (batch.to_attempted_at, batch.to_id) == (cursor.attempted_at, cursor.attempt_id)
            return out
        out.append(batch)
        cursor = WatchCursor(attempted_at=batch.to_attempted_at, attempt_id=batch.to_id)
    raise AssertionError("the cursor does not come to rest")


def test_attempts_in_time_order_known_students_and_days(warehouse_url):
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    batch = read_new_attempts(engine, WatchCursor(), UNTIL, 100)
    # 8 rows: the one without attempted_at is outside the scan (the source check reports it).
    assert (batch.to_attempted_at, batch.to_id, batch.rows, batch.full) == (at(D2, 8), 8, 8, False)
    assert batch.user_ids == ["1", "2", "3"]  # 999 is not a student
    assert batch.days == [DAY, D1, D2]
    after = WatchCursor(attempted_at=batch.to_attempted_at, attempt_id=batch.to_id)
    again = read_new_attempts(engine, after, UNTIL, 100)
    assert (again.rows, again.to_attempted_at, again.to_id) == (0, at(D2, 8), 8)
    engine.dispose()


def test_a_limit_never_cuts_through_an_instant_or_the_copies_of_an_id(warehouse_url):
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    got = [
        (b.to_attempted_at, b.to_id, b.rows, b.full) for b in walk(engine, WatchCursor(), UNTIL, 2)
    ]
    assert got == [
        (at(DAY, 10), 3, 2, True),  # ids 1, 3 | 2
        (at(DAY, 23, 59), 2, 1, True),  # 2, 5 | 5: the copies of 5 share an instant: both wait
        (at(D1, 0, 1), 5, 2, True),  # 5, 5 | 8
        (at(D2, 8), 7, 2, True),  # 6, 7 | 8: the whole batch is one instant: cut by id
        (at(D2, 8), 8, 1, False),
    ]
    # More copies of one (attempted_at, id) than the limit: the cursor still moves on.
    one = read_new_attempts(engine, WatchCursor(at(DAY, 23, 59), 2), UNTIL, 1)
    assert (one.to_attempted_at, one.to_id, one.rows, one.full) == (at(D1, 0, 1), 5, 1, True)
    # Every orderable row is read exactly once, whatever the limit (a limit of 1 reads one
    # copy of id 5, as above, rather than stall).
    for limit, rows in ((1, 7), (2, 8), (3, 8), (4, 8), (100, 8)):
        assert sum(b.rows for b in walk(engine, WatchCursor(), UNTIL, limit)) == rows, limit
    engine.dispose()


def test_rows_arriving_late_with_lower_ids_are_each_seen_once(warehouse_url):
    """The view's ids are not in commit order: id 5 is attempted (and committed) after id 900.
    Keyed on (attempted_at, id), every row is read once; an id cursor would never read 5."""
    seed_reference(warehouse_url, n_users=3)
    engine = make_engine(warehouse_url)
    now = datetime(2026, 3, 11, 12, 0)
    lag = timedelta(minutes=2)
    seen: list[int] = []
    read = 0
    cursor = start_cursor(engine, attempts_until=now - lag, sessions_until=now)
    assert cursor == WatchCursor()
    arrivals = [
        [(900, -10), (901, -9)],
        [(5, -5), (6, -1)],  # 5: after 901 with a lower id; 6: inside the lag, waits
        [(902, -0.5), (3, -0.2)],
        [],
    ]
    rows: dict[int, datetime] = {}
    for step, new in enumerate(arrivals):
        frame = [
            {"id": i, "user_id": 1 + i % 3, "attempted_at": now + timedelta(minutes=m)}
            for i, m in new
        ]
        rows |= {r["id"]: r["attempted_at"] for r in frame}
        if frame:
            insert_attempts(warehouse_url, attempts_frame(frame))
        before = cursor
        for _ in range(3):  # a few ticks at this instant, limit 2
            batch = read_new_attempts(engine, cursor, now - lag, 2)
            read += batch.rows
            cursor = WatchCursor(attempted_at=batch.to_attempted_at, attempt_id=batch.to_id)
        # The rows the cursor passed in this step, in (attempted_at, id) order.
        seen += [
            i
            for i, t in sorted(rows.items(), key=lambda r: (r[1], r[0]))
            if (before.attempted_at is None or (t, i) > (before.attempted_at, before.attempt_id))
            and (t, i) <= (cursor.attempted_at, cursor.attempt_id)
        ]
        assert cursor.attempted_at is None or cursor.attempted_at <= now - lag
        if step == 1:
            assert 5 in seen and 6 not in seen  # 6 waits for the lag
        now += timedelta(minutes=2)
    assert read == len(rows)  # no row read twice
    assert sorted(seen) == sorted(rows) and len(seen) == len(set(seen))
    assert seen == [900, 901, 5, 6, 902, 3]
    engine.dispose()


def test_rows_newer_than_the_lag_wait(warehouse_url):
    seed_reference(warehouse_url, n_users=3)
    now = datetime(2026, 3, 11, 12, 0)
    insert_attempts(
        warehouse_url,
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "attempted_at": now - timedelta(minutes=3)},
                {"id": 2, "user_id": 2, "attempted_at": now - timedelta(minutes=2)},  # == bound
                {"id": 3, "user_id": 3, "attempted_at": now - timedelta(seconds=119)},
                {"id": 4, "user_id": 3, "attempted_at": now + timedelta(hours=1)},  # clock ahead
            ]
        ),
    )
    engine = make_engine(warehouse_url)
    first = read_new_attempts(engine, WatchCursor(), now - timedelta(minutes=2), 100)
    assert (first.rows, first.to_id, first.user_ids) == (2, 2, ["1", "2"])
    cur = WatchCursor(attempted_at=first.to_attempted_at, attempt_id=first.to_id)
    later = read_new_attempts(engine, cur, now + timedelta(seconds=1), 100)
    assert (later.rows, later.to_id) == (1, 3)
    engine.dispose()


def test_sessions_keyset_ties_open_sessions_and_settle(warehouse_url):
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    until = T0 + timedelta(minutes=30)  # session 13 completed later: not yet
    first = read_completed_sessions(engine, WatchCursor(), until, 2)
    assert (first.completed_at, first.session_id, first.user_ids) == (T0, "11", ["1", "2"])
    assert first.full
    cur = WatchCursor(completed_at=first.completed_at, session_id=first.session_id)
    second = read_completed_sessions(engine, cur, until, 2)
    assert (second.session_id, second.sessions, second.user_ids) == ("12", 1, ["1"])
    assert not second.full
    cur = WatchCursor(completed_at=second.completed_at, session_id=second.session_id)
    assert read_completed_sessions(engine, cur, until, 2).sessions == 0
    later = read_completed_sessions(engine, cur, T0 + timedelta(hours=2), 2)
    assert later.user_ids == ["3"] and later.session_id == "13"
    # Mid-tie cursor: session 10 done, 11 (same completed_at) still to come.
    tie = read_completed_sessions(engine, WatchCursor(completed_at=T0, session_id="10"), until, 5)
    assert tie.user_ids == ["1", "2"] and tie.sessions == 2
    # Ids compare as text: "" is before every id (what a converted v1 cursor holds).
    assert read_completed_sessions(engine, WatchCursor(completed_at=T0), until, 5).sessions == 3
    engine.dispose()


def test_start_cursor_is_now_minus_the_lag(warehouse_url):
    engine = make_engine(warehouse_url)
    assert start_cursor(engine, attempts_until=T0, sessions_until=T0) == WatchCursor()
    engine.dispose()
    seed(warehouse_url)
    engine = make_engine(warehouse_url)
    cur = start_cursor(engine, attempts_until=at(D2, 9), sessions_until=T0 + timedelta(minutes=10))
    assert cur == WatchCursor(at(D2, 8), 8, T0 + timedelta(minutes=5), "12")  # highest id there
    # The newest attempt at or before the bound, not the highest id.
    assert start_cursor(engine, attempts_until=at(DAY, 12), sessions_until=T0) == WatchCursor(
        at(DAY, 10), 3, T0, "11"
    )
    engine.dispose()


def test_cursor_json_round_trip_and_errors():
    cur = WatchCursor(
        datetime(2026, 3, 3, 9, 0, 0, 5), 42, datetime(2026, 3, 3, 10, 0, 0, 123456), "s-7"
    )
    assert WatchCursor.from_json(cur.to_json()) == cur
    assert WatchCursor.from_json(WatchCursor().to_json()) == WatchCursor()
    # What an operator types: an integer session id, an offset, missing keys.
    typed = WatchCursor.from_json(
        '{"v": 2, "attempted_at": "2026-03-03T10:00:00+09:00", "attempt_id": 5, "session_id": 7}'
    )
    assert typed == WatchCursor(datetime(2026, 3, 3, 1, 0), 5, None, "7")
    for bad in (
        "42",
        "not json",
        '{"v": 3, "attempt_id": 1}',
        "[]",
        '{"v": 2, "attempt_id": "x"}',
        '{"v": 2, "attempted_at": "yesterday"}',
        '{"v": 2, "session_id": [1]}',
    ):
        with pytest.raises(ValueError, match="cursor"):
            WatchCursor.from_json(bad)


def test_a_version_1_cursor_converts_without_losing_a_row(warehouse_url):
    """v1 said "ids up to N handled". The next read starts at the earliest attempted_at of
    the ids above N: every unhandled row is read, some handled ones again."""
    seed_reference(warehouse_url, n_users=3)
    insert_attempts(
        warehouse_url,
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "attempted_at": at(DAY, 9)},
                {"id": 2, "user_id": 1, "attempted_at": at(DAY, 10)},
                {"id": 3, "user_id": 1, "attempted_at": at(DAY, 11)},  # the v1 cursor: 3
                {"id": 4, "user_id": 2, "attempted_at": at(DAY, 10)},  # late, higher id
                {"id": 1, "user_id": 1, "attempted_at": at(DAY, 10)},  # handled, same instant
                {"id": 5, "user_id": 3, "attempted_at": at(D1, 9)},
            ]
        ),
    )
    v1 = WatchCursor.from_json(
        '{"v": 1, "attempt_id": 3, "completed_at": "2026-03-03T10:00:00", "session_id": 11}'
    )
    assert v1 == WatchCursor(completed_at=T0, session_id="", v1_after_id=3)
    assert WatchCursor.from_json(v1.to_json()) == v1  # saved unresolved: still converts
    engine = make_engine(warehouse_url)
    batch = read_new_attempts(engine, v1, UNTIL, 100)
    # From (10:00, 3): ids 4 (10:00), 3 (11:00), 5; not 1 and 2 at 10:00 (ids <= 3).
    assert (batch.rows, batch.to_attempted_at, batch.to_id) == (3, at(D1, 9), 5)
    assert batch.user_ids == ["1", "2", "3"]
    # No id above N: like a new sensor, at the newest row at or before the bound.
    none_after = WatchCursor.from_json('{"v": 1, "attempt_id": 99}')
    empty = read_new_attempts(engine, none_after, at(DAY, 10, 30), 100)
    assert (empty.rows, empty.to_attempted_at, empty.to_id) == (0, at(DAY, 10), 4)
    engine.dispose()


def test_sqlite_text_timestamps_in_mixed_forms(sqlite_url):
    """SQLite compares text as text. The cursor's bounds are texts that compare right with
    ``YYYY-MM-DD HH:MM:SS`` with or without a fraction; other forms (``T``, more than six
    fraction digits, impossible dates, numbers) are outside the scan, never re-read in a loop."""
    seed_reference(sqlite_url, n_users=3)
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1, "attempted_at": "2026-03-02 10:00:00.000000"},
            {"id": 2, "attempted_at": "2026-03-02 10:00:00"},  # the same instant as 1
            {"id": 3, "attempted_at": "2026-03-02 10:00:00.5"},
            {"id": 4, "attempted_at": "2026-03-02 10:00:00.250000"},
            {"id": 5, "attempted_at": "2026-03-02 09:59:59.999999"},
            {"id": 9, "attempted_at": "2026-03-02 10:00:01"},
            {"id": 60, "attempted_at": "2026-03-02T09:00:00"},
            {"id": 61, "attempted_at": "2026-03-02 10:00:00.1234567"},
            {"id": 62, "attempted_at": "2026-02-30 10:00:00"},
            {"id": 63, "attempted_at": "2026-03-02 24:00:00"},
            {"id": 64, "attempted_at": 1772528400},
            {"id": 65, "attempted_at": "2026-03-02 10:00:00+09:00"},
            {"id": 66, "attempted_at": None},
            {"id": "x-67", "attempted_at": "2026-03-02 10:00:00"},
        ],
    )
    engine = make_engine(sqlite_url)
    everything = read_new_attempts(engine, WatchCursor(), UNTIL, 100)
    assert (everything.rows, everything.to_attempted_at, everything.to_id) == (
        6,
        datetime(2026, 3, 2, 10, 0, 1),
        9,
    )
    for limit in (1, 2, 3):
        batches = walk(engine, WatchCursor(), UNTIL, limit)
        assert sum(b.rows for b in batches) == 6, limit  # each row once
        assert [b.to_id for b in batches][-1] == 9
    two = walk(engine, WatchCursor(), UNTIL, 2)
    assert [(b.to_attempted_at, b.to_id) for b in two] == [
        (datetime(2026, 3, 2, 9, 59, 59, 999999), 5),  # 5, "10:00:00" | "10:00:00.000000"
        (datetime(2026, 3, 2, 10), 2),  # both texts of 10:00:00: the highest id, 2
        (datetime(2026, 3, 2, 10, 0, 0, 500000), 3),  # .25 (4), .5 (3)
        (datetime(2026, 3, 2, 10, 0, 1), 9),
    ]
    # The bounds: a cursor at 10:00:00 id 1 still reads id 2 written without a fraction.
    mid = read_new_attempts(engine, WatchCursor(datetime(2026, 3, 2, 10), 1), UNTIL, 100)
    assert mid.rows == 4
    # The lag bound "10:00:00.000000" keeps "10:00:00" and leaves ".25" for later.
    upto = read_new_attempts(engine, WatchCursor(), datetime(2026, 3, 2, 10), 100)
    assert (upto.rows, upto.to_id) == (3, 2)
    assert start_cursor(
        engine, attempts_until=datetime(2026, 3, 2, 10), sessions_until=T0
    ) == WatchCursor(datetime(2026, 3, 2, 10), 2)
    engine.dispose()


def test_partition_days_keeps_complete_days_only():
    days = [date(2024, 12, 31), date(2025, 1, 6), date(2026, 3, 2), date(2026, 3, 3)]
    assert partition_days(days, date(2025, 1, 6), date(2026, 3, 2)) == days[1:3]
    assert partition_days(days, date(2025, 1, 6), None) == []


def test_unreadable_rows_are_skipped_and_reported_not_fatal(sqlite_url):
    """SQLite holds anything: a number or text in ``attempted_at``, text in ``user_id`` or
    ``id``. What the cursor cannot order is not read; what it reads but cannot use is
    reported; the batch still moves on."""
    seed_reference(sqlite_url, n_users=3)
    insert_raw_attempts(
        sqlite_url,
        [
            {"id": 1},
            {"id": 2, "attempted_at": 1772528400},  # Unix seconds: not orderable with text
            {"id": 3, "attempted_at": "yesterday"},
            {"id": 4, "user_id": "abc"},  # a text id, just not a student's
            {"id": "x-5"},  # not an integer id (the source check reports it)
            {"id": 6, "user_id": 2, "attempted_at": "2026-03-04 08:00:00"},
        ],
    )
    engine = make_engine(sqlite_url)
    batch = read_new_attempts(engine, WatchCursor(), UNTIL, 100)
    assert (batch.to_id, batch.rows, batch.user_ids) == (6, 3, ["1", "2"])
    assert batch.days == [DAY, D2]
    assert batch.bad == []  # ids are text: "abc" is an unknown student, not a bad value
    assert start_cursor(engine, attempts_until=T0, sessions_until=T0).attempt_id == 4
    engine.dispose()


def test_features_run_key_names_the_batch_cursor():
    batch = AttemptBatch(to_attempted_at=datetime(2026, 3, 2, 10, 0, 0, 5), to_id=5)
    assert features_run_key(DAY, batch) == (
        "features_topic_daily:2026-03-02:2026-03-02T10:00:00.000005:5"
    )


def test_attempts_lag_setting(monkeypatch):
    monkeypatch.delenv("SEEDTEST_ATTEMPTS_LAG_SECONDS", raising=False)
    assert attempts_lag() == timedelta(seconds=watch.DEFAULT_LAG_SECONDS) == timedelta(minutes=2)
    monkeypatch.setenv("SEEDTEST_ATTEMPTS_LAG_SECONDS", "30")
    assert attempts_lag() == timedelta(seconds=30)
    for bad in ("0", "-5", "2m", "86401"):
        monkeypatch.setenv("SEEDTEST_ATTEMPTS_LAG_SECONDS", bad)
        with pytest.raises(SettingsError, match="SEEDTEST_ATTEMPTS_LAG_SECONDS"):
            attempts_lag()
