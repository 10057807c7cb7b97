"""``schema.polars_schema``: a frame's polars schema derived from its warehouse table."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    select,
)

from seedtest_assets.core.warehouse import insert_frame, make_engine, read_frame, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.db import frame_schema

KINDS = Table(
    "kinds",
    MetaData(),
    Column("i", Integer),
    Column("b", BigInteger),
    Column("small", SmallInteger),
    Column("f", Float),
    Column("t", Text),
    Column("v", String(8)),
    Column("d", Date),
    Column("ts", DateTime),
    Column("flag", Boolean),
    Column("j", JSON),
)


def test_types_per_column_kind() -> None:
    assert s.polars_schema(KINDS) == {
        "i": pl.Int64(),
        "b": pl.Int64(),
        "small": pl.Int64(),
        "f": pl.Float64(),
        "t": pl.String(),
        "v": pl.String(),
        "d": pl.Date(),
        "ts": pl.Datetime("us"),
        "flag": pl.Boolean(),
        "j": pl.String(),  # JSON travels as its text (insert_frame, read_frame)
    }


@pytest.mark.parametrize("table", list(s.metadata.tables.values()), ids=lambda t: t.name)
def test_column_order_is_table_order_and_agrees_with_read_frame(table: Table) -> None:
    derived = s.polars_schema(table)
    assert list(derived) == [c.name for c in table.columns]
    assert derived == frame_schema(select(table))


def test_columns_pick_and_order_and_overrides_replace() -> None:
    t = s.mirt_ability
    assert s.polars_schema(t, ["theta", "user_id"]) == {
        "theta": pl.Float64(),
        "user_id": pl.String(),
    }
    assert s.polars_schema(t, ["user_id"], overrides={"user_id": pl.Int32()}) == {
        "user_id": pl.Int32()
    }
    with pytest.raises(KeyError, match="no column"):
        s.polars_schema(t, ["nope"])
    with pytest.raises(KeyError, match="not selected"):
        s.polars_schema(t, ["user_id"], overrides={"theta": pl.Float32()})


def _one_of_each(table: Table) -> pl.DataFrame:
    """Two rows for ``table`` (every column filled in the first, nullable ones null in the
    second) in the derived schema."""
    value = {
        pl.Int64(): 0,  # replaced by the row number: distinct keys, unique indexes included
        pl.Float64(): 0.25,
        pl.String(): "x",
        pl.Date(): date(2026, 3, 2),
        pl.Datetime("us"): datetime(2026, 3, 2, 9, 30, 0, 123456),
        pl.Boolean(): True,
    }
    schema = s.polars_schema(table)
    rows = []
    for i in (1, 2):
        row = {}
        for c in table.columns:
            v = value[schema[c.name]]
            if isinstance(c.type, JSON):
                v = '{"k": 1}'
            elif schema[c.name] == pl.Int64():
                v = i
            elif (c.primary_key or c.name.endswith("_id")) and schema[c.name] == pl.String():
                v = f"k{i}"
            row[c.name] = None if (i == 2 and c.nullable and not c.primary_key) else v
        rows.append(row)
    return pl.DataFrame(rows, schema=schema, orient="row")


@pytest.mark.parametrize(
    "table",
    [s.attempts, s.users, s.features_topic_daily, s.weekly_kpi, s.mirt_ability, s.truth_users],
    ids=lambda t: t.name,
)
def test_a_frame_written_then_read_back_has_the_derived_schema(warehouse_url, table) -> None:
    frame = _one_of_each(table)
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        insert_frame(conn, table, frame)
    with engine.connect() as conn:
        back = read_frame(conn, select(table))
    engine.dispose()
    assert dict(back.schema) == s.polars_schema(table)
    key = [c.name for c in table.primary_key.columns] or ["id"]
    assert (
        back.sort(key).drop("kpis", strict=False).rows()
        == frame.sort(key).drop("kpis", strict=False).rows()
    )


def test_the_id_columns_agree_everywhere() -> None:
    from seedtest_assets.core import ids
    from seedtest_assets.core.attempts import validate
    from seedtest_assets.core.synthetic.generate import ID_FORMATS

    found = {c.name for t in s.metadata.sorted_tables for c in t.columns}
    # Every column that names a product object by id is one of the rule's id columns.
    product_ids = {
        n
        for n in found
        if n in ("user_id", "org_id") or n.endswith(("session_id", "item_id", "topic_id"))
    }
    assert product_ids == set(ids.ID_COLUMNS)
    for table in s.metadata.sorted_tables:
        for name in s.id_columns(table):
            assert isinstance(table.c[name].type, s.Ident), (table.name, name)
    assert s.id_columns(s.users) == ("user_id", "org_id")
    assert (
        validate.ID_COLUMNS
        == s.id_columns(s.attempts)
        == (
            "user_id",
            "session_id",
            "item_id",
            "topic_id",
        )
    )
    assert set(ID_FORMATS) == set(ids.ID_COLUMNS)
