"""Small hand-made warehouse contents with known good and bad attempts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import text

from seedtest_assets.core.warehouse import insert_frame, make_engine, transaction
from seedtest_assets.core.warehouse import schema as s

DAY = date(2026, 3, 2)  # a Monday

#: An ``attempts`` frame (derived from the table).
ATTEMPT_SCHEMA = s.polars_schema(s.attempts)


def attempts_frame(rows: list[dict]) -> pl.DataFrame:
    """Attempts from dicts; missing columns are filled with valid defaults."""
    defaults = {
        "session_id": 1,
        "item_id": 100,
        "topic_id": 1,
        "is_correct": True,
        "response_time_ms": 10_000,
        "hints_used": 0,
    }
    full = [{**defaults, **r} for r in rows]
    # Ids may be given as numbers for brevity: they are text ids ("1", "100") like any other.
    return pl.DataFrame(full, schema=ATTEMPT_SCHEMA, strict=False)


def seed_reference(url: str, n_users: int = 3) -> None:
    """Topics 1-2, items 100-101 (topic 1) and 200 (topic 2), users 1..n created before DAY."""
    engine = make_engine(url)
    with transaction(engine) as conn:
        insert_frame(conn, s.organizations, pl.DataFrame({"org_id": [1], "name": ["서울 학원"]}))
        insert_frame(
            conn,
            s.topics,
            pl.DataFrame(
                {"topic_id": [1, 2], "name": ["대수", "기하"], "name_en": ["Algebra", "Geometry"]}
            ),
        )
        insert_frame(
            conn, s.items, pl.DataFrame({"item_id": [100, 101, 200], "topic_id": [1, 1, 2]})
        )
        insert_frame(
            conn,
            s.users,
            pl.DataFrame(
                {
                    "user_id": list(range(1, n_users + 1)),
                    "org_id": [1] * n_users,
                    "display_name": [f"학생{i}" for i in range(1, n_users + 1)],
                    "goal_theta": [1.0] * n_users,
                    "goal_date": [DAY + timedelta(days=60)] * n_users,
                    "created_at": [datetime(2026, 1, 1)] * n_users,
                }
            ),
        )
    engine.dispose()


def insert_attempts(url: str, frame: pl.DataFrame) -> None:
    engine = make_engine(url)
    with transaction(engine) as conn:
        insert_frame(conn, s.attempts, frame)
    engine.dispose()


#: A valid raw row for :func:`insert_raw_attempts`, as SQLAlchemy writes it on SQLite.
RAW_GOOD = {
    "user_id": 1,
    "session_id": 1,
    "item_id": 100,
    "topic_id": 1,
    "is_correct": 1,
    "response_time_ms": 4000,
    "hints_used": 0,
    "attempted_at": "2026-03-02 09:00:00.000000",
}


def insert_raw_attempts(url: str, rows: list[dict]) -> None:
    """Attempts through plain SQL with the driver's own types (no SQLAlchemy type processing):
    on SQLite a str lands as TEXT, an int as INTEGER, whatever the column is declared as.
    Missing columns come from ``RAW_GOOD``."""
    cols = ("id", *RAW_GOOD)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(  # our own column names, values bound
                f"INSERT INTO attempts ({', '.join(cols)}) "
                f"VALUES ({', '.join(':' + c for c in cols)})"
            ),
            [{**RAW_GOOD, **r} for r in rows],
        )
    engine.dispose()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


def planted_day(day: date = DAY) -> tuple[pl.DataFrame, dict[str, int]]:
    """One day of attempts: 6 good rows and one bad row per reason.

    Returns the frame and the expected rejected *rows* per reason.
    """
    good = [
        {
            "id": 1,
            "user_id": 1,
            "attempted_at": at(day, 9),
            "is_correct": True,
            "response_time_ms": 4000,
        },
        {
            "id": 2,
            "user_id": 1,
            "attempted_at": at(day, 9, 5),
            "is_correct": False,
            "response_time_ms": 8000,
            "hints_used": 1,
        },
        {"id": 3, "user_id": 1, "item_id": 200, "topic_id": 2, "attempted_at": at(day, 9, 10)},
        {
            "id": 4,
            "user_id": 2,
            "attempted_at": at(day, 20),
            "is_correct": True,
            "response_time_ms": 1000,
        },
        {
            "id": 5,
            "user_id": 2,
            "attempted_at": at(day, 20, 1),
            "is_correct": True,
            "response_time_ms": 3000,
        },
        {
            "id": 6,
            "user_id": 2,
            "attempted_at": at(day, 20, 2),
            "is_correct": False,
            "response_time_ms": 5000,
        },
    ]
    bad = [
        {"id": 10, "user_id": 999, "attempted_at": at(day, 10)},  # unknown_user
        {"id": 11, "user_id": 1, "item_id": 999, "attempted_at": at(day, 10)},  # unknown_item
        {"id": 12, "user_id": 1, "topic_id": 2, "attempted_at": at(day, 10)},  # topic_mismatch
        {"id": 13, "user_id": 1, "response_time_ms": -1, "attempted_at": at(day, 10)},
        {"id": 14, "user_id": 1, "response_time_ms": 7_200_000, "attempted_at": at(day, 10)},
        {"id": 15, "user_id": 1, "hints_used": -2, "attempted_at": at(day, 10)},
        {"id": 16, "user_id": 1, "is_correct": None, "attempted_at": at(day, 10)},  # null_field
        {"id": 18, "user_id": 1, "session_id": " ", "attempted_at": at(day, 10)},  # bad_id
        {
            "id": 4,
            "user_id": 2,
            "attempted_at": at(day, 20),
            "is_correct": True,
            "response_time_ms": 1000,
        },  # exact copy of 4
        {"id": 17, "user_id": 3, "attempted_at": at(day, 11)},  # conflicting copies of 17
        {"id": 17, "user_id": 3, "attempted_at": at(day, 12)},
    ]
    expected = {
        "unknown_user": 1,
        "unknown_item": 1,
        "topic_mismatch": 1,
        "response_time_negative": 1,
        "response_time_absurd": 1,
        "hints_negative": 1,
        "null_field": 1,
        "bad_id": 1,
        "duplicate_id": 1,
        "duplicate_id_conflict": 2,
    }
    return attempts_frame(good + bad), expected
