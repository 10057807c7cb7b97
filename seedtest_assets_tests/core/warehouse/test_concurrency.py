"""Overlapping writes of one partition serialize; a duplicate is impossible; nothing is
replaced by nothing."""

from __future__ import annotations

import threading
from datetime import date, datetime

import polars as pl
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from seedtest_assets.core.warehouse import make_engine, replace_rows
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.db import EmptyReplaceError, insert_frame

DAY = date(2026, 3, 3)
WEEK = date(2026, 3, 2)


def features(n: int, attempts: int) -> pl.DataFrame:
    """``n`` students' rows of one day and topic."""
    return pl.DataFrame(
        {
            "date": [DAY] * n,
            "user_id": list(range(1, n + 1)),
            "topic_id": [1] * n,
            "attempts": [attempts] * n,
            "correct": [1] * n,
            "accuracy": [1 / attempts] * n,
            "rt_median": [30_000.0] * n,
            "hints": [0] * n,
            "last_attempt_at": [datetime(2026, 3, 3, 9)] * n,
            "computed_at": [datetime(2026, 3, 4, 1, 15)] * n,
        }
    )


def day_rows(engine) -> list[tuple[int, int]]:
    f = s.features_topic_daily
    with engine.connect() as conn:
        return conn.execute(
            select(f.c.user_id, f.c.attempts).where(f.c.date == DAY).order_by(f.c.user_id)
        ).all()


@pytest.mark.postgres
def test_two_runs_replacing_one_partition_at_once_serialize(postgres_url):
    """The second writer waits for the first and then replaces its rows. Without the lock its
    DELETE saw only the old rows and its INSERT died with UniqueViolation (2 of 3 trials)."""
    engine = make_engine(postgres_url)
    f = s.features_topic_daily
    with engine.begin() as conn:
        conn.execute(f.delete())
        insert_frame(conn, f, features(50, 2))  # yesterday's write
    where = f.c.date == DAY
    second_done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with engine.begin() as conn:
                replace_rows(conn, f, where, features(50, 4))
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
        finally:
            second_done.set()

    with engine.begin() as first:
        replace_rows(first, f, where, features(50, 3))
        worker = threading.Thread(target=second)
        worker.start()
        # The second writer is blocked (on the lock) while the first holds its transaction.
        assert not second_done.wait(1.0)
        with engine.connect() as probe:
            waiting = probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        assert waiting == 1
    worker.join(30)
    assert not errors, errors
    assert day_rows(engine) == sorted((str(u), 4) for u in range(1, 51))  # the last write, once
    with engine.begin() as conn:
        conn.execute(f.delete())
    engine.dispose()


def test_a_second_weekly_ability_row_for_a_student_week_is_impossible(warehouse_url):
    engine = make_engine(warehouse_url)
    row = {
        "user_id": 7,
        "week_start": WEEK,
        "theta": 0.1,
        "se": 0.3,
        "model": "2PL",
        "version": "2PL@2026-03-02",
        "source": "weekly",
        "n_responses": 20,
        "fitted_at": datetime(2026, 3, 9, 3, 10),
    }
    with engine.begin() as conn:
        conn.execute(s.mirt_ability.insert(), [row])
    for dup in (
        {**row, "fitted_at": datetime(2026, 3, 9, 3, 11)},  # an overlapping weekly write
        {**row, "source": "online", "week_start": WEEK},  # fine: a re-score row
    ):
        try:
            with engine.begin() as conn:
                conn.execute(s.mirt_ability.insert(), [dup])
        except IntegrityError:
            assert dup["source"] == "weekly"
        else:
            assert dup["source"] == "online"
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                select(s.mirt_ability.c.source, func.count()).group_by(s.mirt_ability.c.source)
            ).all()
        )
    assert counts == {"weekly": 1, "online": 1}
    engine.dispose()


def test_a_write_with_no_rows_never_empties_a_stored_partition(warehouse_url):
    engine = make_engine(warehouse_url)
    f = s.features_topic_daily
    with engine.begin() as conn:
        insert_frame(conn, f, features(5, 2))
    with (
        pytest.raises(EmptyReplaceError, match="refusing to replace them with nothing"),
        engine.begin() as conn,
    ):
        replace_rows(conn, f, f.c.date == DAY, features(0, 1))
    assert len(day_rows(engine)) == 5  # rolled back
    with engine.begin() as conn:  # said explicitly, it may
        replace_rows(conn, f, f.c.date == DAY, features(0, 1), allow_empty=True)
    assert day_rows(engine) == []
    engine.dispose()
