"""A product-shaped source in schema ``exam``: its own relation and column names, text ids.

The exam product keeps students, academies, units, questions, sessions and answers in its
own tables and exposes ``exam.attempt``, a VIEW over ``exam.answers`` (one column renamed:
``hints`` -> ``hints_used``; ``answer_id`` -> ``id``). :data:`PRODUCT_ENV` points the
platform at it. :func:`write_product` fills it from a synthetic population (renamed into the
product's shape, written with COPY), so tests can compare our outputs with SQL over the raw
``exam`` tables.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping

import polars as pl
import pytest
from sqlalchemy import Engine, text

from seedtest_assets.core.source.relations import clear_source_cache

#: The product's DDL (our code never creates these: only tests stand in for the product).
PRODUCT_DDL = """
CREATE SCHEMA exam;
CREATE TABLE exam.academies (academy_id text PRIMARY KEY, academy_name text NOT NULL);
CREATE TABLE exam.students (
    student_id text PRIMARY KEY, academy text NOT NULL, nickname text NOT NULL,
    target_theta float8, target_date date, signed_up timestamp NOT NULL);
CREATE TABLE exam.units (unit_id text PRIMARY KEY, unit_name text NOT NULL, unit_name_en text);
CREATE TABLE exam.questions (question_id text PRIMARY KEY, unit_id text NOT NULL);
CREATE TABLE exam.exam_sessions (
    session_ref text PRIMARY KEY, student_id text NOT NULL, began_at timestamp NOT NULL,
    finished_at timestamp);
CREATE TABLE exam.answers (
    answer_id bigint NOT NULL, student_id text, question_id text, unit_id text,
    session_ref text, correct boolean, elapsed_ms int, hints int, answered_at timestamp);
CREATE INDEX answers_answer_id ON exam.answers (answer_id);
CREATE INDEX answers_answered_at ON exam.answers (answered_at);
CREATE VIEW exam.attempt AS
    SELECT answer_id AS id, student_id, question_id, unit_id, session_ref, correct,
           elapsed_ms, hints AS hints_used, answered_at
    FROM exam.answers;
"""

#: SOURCE_* pointing at the ``exam`` schema.
PRODUCT_ENV: dict[str, str] = {
    "SOURCE_ATTEMPTS": "exam.attempt",
    "SOURCE_ATTEMPTS_COLUMNS": (
        "user_id=student_id, session_id=session_ref, item_id=question_id, topic_id=unit_id, "
        "is_correct=correct, response_time_ms=elapsed_ms, attempted_at=answered_at"
    ),
    "SOURCE_USERS": "exam.students",
    "SOURCE_USERS_COLUMNS": (
        "user_id=student_id,org_id=academy,display_name=nickname,goal_theta=target_theta,"
        "goal_date=target_date,created_at=signed_up"
    ),
    "SOURCE_ITEMS": "exam.questions",
    "SOURCE_ITEMS_COLUMNS": "item_id=question_id,topic_id=unit_id",
    "SOURCE_TOPICS": "exam.units",
    "SOURCE_TOPICS_COLUMNS": "topic_id=unit_id,name=unit_name,name_en=unit_name_en",
    "SOURCE_SESSIONS": "exam.exam_sessions",
    "SOURCE_SESSIONS_COLUMNS": (
        "session_id=session_ref,user_id=student_id,started_at=began_at,completed_at=finished_at"
    ),
    "SOURCE_ORGANIZATIONS": "exam.academies",
    "SOURCE_ORGANIZATIONS_COLUMNS": "org_id=academy_id,name=academy_name",
}

#: Our table -> (product table written, our column -> product column), for write_product.
PRODUCT_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "organizations": ("exam.academies", {"org_id": "academy_id", "name": "academy_name"}),
    "users": (
        "exam.students",
        {
            "user_id": "student_id",
            "org_id": "academy",
            "display_name": "nickname",
            "goal_theta": "target_theta",
            "goal_date": "target_date",
            "created_at": "signed_up",
        },
    ),
    "topics": (
        "exam.units",
        {"topic_id": "unit_id", "name": "unit_name", "name_en": "unit_name_en"},
    ),
    "items": ("exam.questions", {"item_id": "question_id", "topic_id": "unit_id"}),
    "exam_sessions": (
        "exam.exam_sessions",
        {
            "session_id": "session_ref",
            "user_id": "student_id",
            "started_at": "began_at",
            "completed_at": "finished_at",
        },
    ),
    "attempts": (
        "exam.answers",
        {
            "id": "answer_id",
            "user_id": "student_id",
            "item_id": "question_id",
            "topic_id": "unit_id",
            "session_id": "session_ref",
            "is_correct": "correct",
            "response_time_ms": "elapsed_ms",
            "hints_used": "hints",
            "attempted_at": "answered_at",
        },
    ),
}


def create_product_schema(engine: Engine) -> None:
    """The empty ``exam`` schema (tables, indexes, the ``attempt`` view)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(PRODUCT_DDL)


def copy_rows(engine: Engine, relation: str, frame: pl.DataFrame) -> None:
    """``frame`` into the product table ``relation`` (its columns named as the product's)
    with ``COPY ... FROM STDIN`` (CSV; an empty field is NULL)."""
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f")
    cols = ", ".join(frame.columns)  # test-owned names, never user input
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {relation} ({cols}) FROM STDIN (FORMAT CSV)") as cp,
        ):
            cp.write(buf.getvalue())


def write_product(engine: Engine, frames: Mapping[str, pl.DataFrame]) -> dict[str, int]:
    """Our-shaped frames (``Population.tables()``, our table names) renamed into the product's
    tables and copied in; rows written per product table."""
    out = {}
    for ours, (relation, renames) in PRODUCT_TABLES.items():
        frame = frames[ours].select(list(renames)).rename(renames)
        copy_rows(engine, relation, frame)
        out[relation] = frame.height
    return out


def catalog_snapshot(engine: Engine, schema: str = "exam") -> dict[str, list[tuple]]:
    """What a schema holds: its relations (kind), columns (type, nullability), indexes, view
    definitions and each table's row count: compare before and after to show nothing
    changed there."""
    with engine.connect() as conn:
        rels = conn.execute(
            text(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = :s ORDER BY 1"
            ),
            {"s": schema},
        ).all()
        cols = conn.execute(
            text(
                "SELECT table_name, column_name, data_type, is_nullable, ordinal_position "
                "FROM information_schema.columns WHERE table_schema = :s ORDER BY 1, 5"
            ),
            {"s": schema},
        ).all()
        idx = conn.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s ORDER BY 1"),
            {"s": schema},
        ).all()
        views = conn.execute(
            text("SELECT viewname, definition FROM pg_views WHERE schemaname = :s ORDER BY 1"),
            {"s": schema},
        ).all()
        counts = [
            (name, conn.execute(text(f'SELECT count(*) FROM "{schema}"."{name}"')).scalar_one())
            for name, kind in rels
            if kind in ("r", "v")
        ]
    return {
        "relations": [tuple(r) for r in rels],
        "columns": [tuple(r) for r in cols],
        "indexes": [tuple(r) for r in idx],
        "views": [tuple(r) for r in views],
        "counts": counts,
    }


@pytest.fixture
def source_env(monkeypatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean ``SOURCE_*`` environment (none set) and a fresh :func:`source_tables` cache,
    before and after; yields ``monkeypatch`` to set variables (then call
    :func:`clear_source_cache`)."""
    from seedtest_assets.core.source.relations import ENV

    for variable in ENV.values():
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(f"{variable}_COLUMNS", raising=False)
    clear_source_cache()
    yield monkeypatch
    clear_source_cache()


def point_at_product(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str] = PRODUCT_ENV):
    """Set ``env`` (default :data:`PRODUCT_ENV`) and forget the cached tables."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    clear_source_cache()
