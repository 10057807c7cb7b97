"""Frame I/O round-trips with identical types on SQLite and PostgreSQL."""

from datetime import date, datetime

import polars as pl
from sqlalchemy import select

from seedtest_assets.core.settings import normalize_database_url, redact_url
from seedtest_assets.core.warehouse import insert_frame, make_engine, read_frame, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.factories import ATTEMPT_SCHEMA


def test_roundtrip_with_nulls_and_types(warehouse_url):
    frame = pl.DataFrame(
        {
            "id": [1, 2],
            "user_id": ["test-user-123", None],
            "session_id": ["session456", "session456"],
            "item_id": ["i-100", "문항-101"],
            "topic_id": ["t-1", None],
            "is_correct": [True, None],
            "response_time_ms": [1500, -3],
            "hints_used": [0, 2],
            "attempted_at": [datetime(2026, 3, 2, 9, 0, 0, 123456), None],
        },
        schema=ATTEMPT_SCHEMA,
    )
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        assert insert_frame(conn, s.attempts, frame) == 2
    with engine.connect() as conn:
        back = read_frame(conn, select(s.attempts).order_by(s.attempts.c.id))
    engine.dispose()
    assert back.schema == frame.schema
    assert back.rows() == frame.rows()


def test_read_frame_binds_parameters_never_formats_them(warehouse_url):
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        insert_frame(
            conn, s.topics, pl.DataFrame({"topic_id": [1], "name": ["대수"], "name_en": ["x"]})
        )
    hostile = "x' OR '1'='1"
    with engine.connect() as conn:
        out = read_frame(conn, select(s.topics).where(s.topics.c.name_en == hostile))
        korean = read_frame(conn, select(s.topics.c.name))
    engine.dispose()
    assert out.height == 0
    assert korean["name"].to_list() == ["대수"]


def test_dates_roundtrip(warehouse_url):
    engine = make_engine(warehouse_url)
    row = pl.DataFrame(
        {
            "user_id": ["U123"],
            "org_id": ["org123"],
            "display_name": ["김하늘"],
            "goal_theta": [None],
            "goal_date": [date(2026, 5, 1)],
            "created_at": [datetime(2026, 1, 1)],
        },
        schema_overrides={"goal_theta": pl.Float64},
    )
    with transaction(engine) as conn:
        insert_frame(conn, s.users, row)
    with engine.connect() as conn:
        back = read_frame(conn, select(s.users))
    engine.dispose()
    assert back.rows() == row.rows()


def test_postgres_urls_use_psycopg3_and_passwords_are_redacted():
    assert normalize_database_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_database_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert "s3cret" not in redact_url("postgresql://u:s3cret@h/db")
