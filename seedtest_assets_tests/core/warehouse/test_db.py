"""Frame I/O round-trips with identical types on SQLite and PostgreSQL."""

from datetime import date, datetime

import polars as pl
from sqlalchemy import select

from seedtest_assets.core.settings import normalize_database_url, redact_url
from seedtest_assets.core.warehouse import (
    insert_frame,
    make_engine,
    read_frame,
    read_frames,
    transaction,
)
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


def test_read_frames_reads_what_read_frame_reads_in_one_snapshot(warehouse_url):
    """The bulk reader (ADBC on PostgreSQL) gives read_frame's frames: same schema and rows,
    nulls and text ids included, with bound (quoted, never formatted) parameters."""
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "user_id": ["test-user-123", None, "x' OR '1'='1"],
            "session_id": ["session456", "session456", "s-\\0"],
            "item_id": ["i-100", "문항-101", "i-100"],
            "topic_id": ["t-1", None, "t-1"],
            "is_correct": [True, None, False],
            "response_time_ms": [1500, -3, 2**31 - 1],
            "hints_used": [0, 2, None],
            "attempted_at": [datetime(2026, 3, 2, 9, 0, 0, 123456), None, datetime(2026, 3, 3)],
        },
        schema=ATTEMPT_SCHEMA,
    )
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        insert_frame(conn, s.attempts, frame)
    a = s.attempts
    stmts = [
        select(a).order_by(a.c.id),
        select(a.c.id, a.c.user_id).where(a.c.user_id == "x' OR '1'='1"),
        select(a.c.id).where(a.c.user_id.in_(["test-user-123", "x'); DROP TABLE attempts; --"])),
        select(a.c.id).where(a.c.attempted_at >= datetime(2026, 3, 2, 12)),
        select(a.c.id, a.c.item_id).where(a.c.id > 99),  # no rows: the schema still holds
    ]
    with engine.connect() as conn:
        single = [read_frame(conn, stmt) for stmt in stmts]
    bulk = read_frames(engine, stmts)
    with engine.connect() as conn:  # nothing was dropped
        assert read_frame(conn, select(a.c.id)).height == 3
    engine.dispose()
    for one, many in zip(single, bulk, strict=True):
        assert many.schema == one.schema
        assert many.rows() == one.rows()
    assert bulk[0].schema == frame.schema and bulk[0].rows() == frame.rows()
    assert [f.height for f in bulk] == [3, 1, 1, 1, 0]


def test_read_frames_gives_a_timestamptz_as_naive_utc(postgres_url):
    """A product view may keep ``timestamptz``: read as naive UTC, like every frame here."""
    from sqlalchemy import DateTime, cast, literal

    engine = make_engine(postgres_url)
    stmt = select(
        cast(literal("2026-03-02 09:00:00+09"), DateTime(timezone=True)).label("attempted_at")
    )
    (frame,) = read_frames(engine, [stmt])
    engine.dispose()
    assert frame.schema["attempted_at"] == pl.Datetime("us")
    assert frame["attempted_at"].to_list() == [datetime(2026, 3, 2, 0, 0)]
