"""Bulk loading a synthetic population into SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime

import polars as pl
import psycopg
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from seedtest_assets.core.synthetic import Population, SyntheticConfig, generate, load
from seedtest_assets.core.synthetic.load import TABLES, binary_layout, binary_tuples
from seedtest_assets.core.warehouse import insert_frame, make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.db import table_counts

START = date(2026, 3, 2)


@pytest.fixture(scope="module")
def pop() -> Population:
    return generate(SyntheticConfig(n_users=300, weeks=4, seed=5, start=START))


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """The session's PostgreSQL warehouse, emptied of what these tests write afterwards."""
    engine = make_engine(postgres_url)
    yield engine
    with engine.begin() as conn:
        for table in (*reversed(TABLES), s.features_topic_daily):
            conn.execute(table.delete())
    engine.dispose()


def _output_row() -> pl.DataFrame:
    now = datetime(2026, 3, 3, 1, 0)
    return pl.DataFrame(
        {
            "date": [START],
            "user_id": [1],
            "topic_id": [1],
            "attempts": [3],
            "correct": [2],
            "accuracy": [2 / 3],
            "rt_median": [30_000.0],
            "hints": [0],
            "improvement": [None],
            "last_attempt_at": [now],
            "computed_at": [now],
        },
        schema_overrides={"improvement": pl.Float64},
    )


def _assert_round_trip(engine: Engine, pop: Population) -> None:
    """Every table reads back exactly as generated (values, nulls, timestamps to the us)."""
    with engine.connect() as conn:
        for table in TABLES:
            key = [c.name for c in table.primary_key.columns] or ["id"]
            got = read_frame(conn, select(table)).sort(key)
            want = pop.tables()[table.name].sort(key)
            assert got.equals(want), table.name


def _check_load(engine: Engine, pop: Population, **kwargs) -> None:
    expected = {name: frame.height for name, frame in pop.tables().items()}
    with engine.begin() as conn:
        insert_frame(conn, s.features_topic_daily, _output_row())
    assert load(engine, pop, replace=True, **kwargs) == expected
    with engine.connect() as conn:
        assert table_counts(conn, {t.name: t for t in TABLES}) == expected
    # A second load replaces: no duplicates, output tables untouched.
    seen: list[str] = []
    counts = load(engine, pop, replace=True, progress=lambda n, _r, _s: seen.append(n), **kwargs)
    assert counts == expected and seen == list(expected)
    with engine.connect() as conn:
        assert table_counts(conn, {t.name: t for t in TABLES}) == expected
        assert table_counts(conn, {"f": s.features_topic_daily}) == {"f": 1}
    _assert_round_trip(engine, pop)
    # replace=False appends: the same population again breaks the primary keys, and the
    # whole load rolls back (one transaction). COPY errors come from psycopg unwrapped.
    with pytest.raises((IntegrityError, psycopg.errors.IntegrityError)):
        load(engine, pop, replace=False, **kwargs)
    with engine.connect() as conn:
        assert table_counts(conn, {t.name: t for t in TABLES}) == expected


def test_load_sqlite(sqlite_url: str, pop: Population) -> None:
    engine = make_engine(sqlite_url)
    try:
        _check_load(engine, pop)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_load_postgres(pg_engine: Engine, pop: Population) -> None:
    # rebuild_indexes_above=1 exercises the drop / rebuild path on a small population.
    _check_load(pg_engine, pop, chunk_rows=1_000, rebuild_indexes_above=1)
    with pg_engine.connect() as conn:
        names = conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'attempts' ORDER BY 1")
        ).scalars()
        assert list(names) == [
            "ix_attempts_attempted_at",
            "ix_attempts_id",
            "ix_attempts_user_id_attempted_at",
        ]
        assert (
            conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'attempts'")).scalar()
            > 0
        )  # analyzed


@pytest.mark.postgres
def test_failed_load_keeps_the_old_data(pg_engine: Engine, pop: Population) -> None:
    load(pg_engine, pop, replace=True)
    broken = generate(SyntheticConfig(n_users=50, weeks=2, seed=1, start=START))
    # Items pointing at a topic that does not exist: the FK fails after the TRUNCATE.
    broken = replace(broken, items=broken.items.with_columns(pl.lit(999).alias("topic_id")))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        load(pg_engine, broken, replace=True)
    with pg_engine.connect() as conn:
        assert table_counts(conn, {"a": s.attempts})["a"] == pop.attempts.height


def test_binary_layout_and_nulls(pop: Population) -> None:
    frame = pl.DataFrame(
        {
            "session_id": ["s-1", "s-2", "s-3"],
            "user_id": ["u-7", "u-7", "u-8"],
            "started_at": [datetime(2026, 3, 2, 9)] * 3,
            "completed_at": [datetime(2026, 3, 2, 10), None, datetime(2026, 3, 2, 11)],
        }
    )
    layout = binary_layout(s.exam_sessions, frame)
    assert layout == [
        ("session_id", "text"),
        ("user_id", "text"),
        ("started_at", ">i8"),
        ("completed_at", ">i8"),
    ]
    blocks = [bytes(b) for b in binary_tuples(frame, layout)]
    # Text fields are their UTF-8 bytes (3 each here), timestamps 8 bytes.
    full, short = 2 + 2 * (4 + 3) + 2 * (4 + 8), 2 + 2 * (4 + 3) + (4 + 8) + 4
    assert sorted(len(b) for b in blocks) == [short, 2 * full]
    assert blocks[[len(b) for b in blocks].index(short)].endswith(b"\xff\xff\xff\xff")
    kpis = pl.DataFrame(
        {"week_start": [START], "user_id": ["u-1"], "kpis": ["{}"], "updated_at": [datetime.now()]}
    )
    assert binary_layout(s.weekly_kpi, kpis) is None  # JSON goes through CSV
    with pytest.raises(ValueError, match="lacks"):
        binary_layout(s.exam_sessions, frame.drop("started_at"))
    with pytest.raises(ValueError, match="outside"):
        list(binary_tuples(pl.DataFrame({"item_id": [2**40]}), [("item_id", ">i4")]))
