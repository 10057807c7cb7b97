"""JSON columns hold JSON objects on both backends, readable by SQL (``->>``, json_extract)."""

from __future__ import annotations

import json
from datetime import date, datetime

import polars as pl
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    select,
    text,
)

from seedtest_assets.core.warehouse import (
    insert_frame,
    make_engine,
    read_frame,
    transaction,
    upgrade,
)
from seedtest_assets.core.warehouse import schema as s

WEEK = date(2026, 11, 23)
KPIS = {"I_t": 0.031, "E_t": None, "P": 0.42, "S": 0.17, "theta": -0.25}


def _kpi_frame(payload: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "week_start": [WEEK],
            "user_id": [7],
            "kpis": [payload],
            "updated_at": [datetime(2026, 11, 30, 2, 10)],
        }
    )


def _json_type(conn, column: str, table: str) -> str:
    if conn.dialect.name == "postgresql":
        return conn.execute(text(f"SELECT json_typeof({column}) FROM {table}")).scalar_one()
    return conn.execute(text(f"SELECT json_type({column}) FROM {table}")).scalar_one()


def test_json_text_is_stored_as_an_object_that_sql_can_read(warehouse_url):
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        insert_frame(conn, s.weekly_kpi, _kpi_frame(json.dumps(KPIS)))
    with engine.connect() as conn:
        assert _json_type(conn, "kpis", "weekly_kpi") == "object"
        # The original runbook's operator works on both (SQLite >= 3.38 has ->> too).
        value = conn.execute(text("SELECT kpis->>'P' FROM weekly_kpi")).scalar_one()
        assert float(value) == pytest.approx(0.42)
        # Readers get the object back: Core rows decode it, frames carry its text.
        assert conn.execute(select(s.weekly_kpi.c.kpis)).scalar_one() == KPIS
        frame = read_frame(conn, select(s.weekly_kpi.c.user_id, s.weekly_kpi.c.kpis))
    assert frame.schema["kpis"] == pl.String
    assert json.loads(frame["kpis"][0]) == KPIS
    engine.dispose()


@pytest.mark.parametrize("bad", ['"{\\"P\\": 0.4}"', "[1, 2]", "0.5"])
def test_json_values_that_are_not_objects_are_refused(warehouse_url, bad):
    engine = make_engine(warehouse_url)
    with pytest.raises(ValueError, match="not JSON objects"), transaction(engine) as conn:
        insert_frame(conn, s.weekly_kpi, _kpi_frame(bad))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM weekly_kpi")).scalar_one() == 0
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path):
    """An empty (unmigrated) database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'w.db'}"
        return
    from seedtest_assets_tests.conftest import (
        _require_postgres,
        create_postgres_database,
        drop_postgres_database,
    )

    _require_postgres()
    url = create_postgres_database("seedtest_json")
    yield url
    drop_postgres_database(url)


def test_migration_0004_unwraps_json_strings_written_before_it(empty_url):
    # What the SQLite path of revision 0003 wrote: the JSON type encoding a JSON text again.
    upgrade(empty_url, "0003")
    engine = make_engine(empty_url)
    params = {"a": 1.2, "b": -0.3, "c": 0.0, "d": 0.36, "flagged": False}
    # The tables as revision 0003 had them (integer ids, before 0008).
    legacy = MetaData()
    kpi_0003 = Table(
        "weekly_kpi",
        legacy,
        Column("week_start", Date),
        Column("user_id", BigInteger),
        Column("kpis", JSON),
        Column("updated_at", DateTime),
    )
    params_0003 = Table(
        "mirt_item_params",
        legacy,
        Column("week_start", Date),
        Column("model", String),
        Column("item_id", Integer),
        Column("params", JSON),
        Column("version", String),
        Column("fitted_at", DateTime),
    )
    with engine.begin() as conn:
        conn.execute(
            kpi_0003.insert(),
            [
                {"week_start": WEEK, "user_id": 1, "kpis": json.dumps(KPIS), "updated_at": WEEK},
                {"week_start": WEEK, "user_id": 2, "kpis": KPIS, "updated_at": WEEK},  # an object
            ],
        )
        conn.execute(
            params_0003.insert(),
            [
                {
                    "week_start": WEEK,
                    "model": "2PL",
                    "item_id": 5,
                    "params": json.dumps(params),
                    "version": "2PL@2026-11-23",
                    "fitted_at": WEEK,
                }
            ],
        )
    with engine.connect() as conn:
        assert _json_type(conn, "kpis", "weekly_kpi WHERE user_id = 1") in ("text", "string")
    upgrade(empty_url)
    with engine.connect() as conn:
        types = [_json_type(conn, "kpis", f"weekly_kpi WHERE user_id = '{u}'") for u in (1, 2)]
        assert types == ["object", "object"]
        rows = conn.execute(select(s.weekly_kpi.c.user_id, s.weekly_kpi.c.kpis)).all()
        assert {u: k for u, k in rows} == {"1": KPIS, "2": KPIS}  # ids are text from 0008
        a = conn.execute(text("SELECT params->>'a' FROM mirt_item_params")).scalar_one()
        assert float(a) == pytest.approx(1.2)
    engine.dispose()


def test_migration_0005_moves_theta_losslessly_both_ways(empty_url):
    """One theta: the growth line's value becomes ``theta``, the window EAP ``theta_window``;
    a downgrade restores every row exactly (weekly rows with a fit, online rows without)."""
    from seedtest_assets.core.warehouse.db import alembic_config

    upgrade(empty_url, "0004")
    engine = make_engine(empty_url)
    cols = "user_id, week_start, theta, se, model, version, source, n_responses, fitted_at"
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO mirt_ability ({cols}, theta_end, theta_end_se, growth, growth_se, "
                "growth_cov) VALUES (1, :w, -0.05, 0.22, '2PL', 'v', 'weekly', 40, :t, -0.23, "
                "0.35, -0.038, 0.02, 0.001), (2, :w, 0.4, 0.3, '2PL', 'v', 'online', 5, :t, "
                "NULL, NULL, NULL, NULL, NULL)"
            ),
            {"w": WEEK, "t": datetime(2026, 11, 30, 3, 10)},
        )
    before = _abilities(engine, ("theta", "se", "theta_end", "theta_end_se", "growth"))
    upgrade(empty_url, "0005")
    after = _abilities(engine, ("theta", "se", "theta_window", "theta_window_se", "growth"))
    assert after == [(1, -0.23, 0.35, -0.05, 0.22, -0.038), (2, 0.4, 0.3, 0.4, 0.3, None)]
    with engine.connect() as conn:  # the view still gives each student's newest row
        latest = conn.execute(text("SELECT user_id, theta FROM mirt_ability_latest ORDER BY 1"))
        assert latest.all() == [(1, -0.23), (2, 0.4)]
    from alembic import command

    command.downgrade(alembic_config(empty_url), "0004")
    assert _abilities(engine, ("theta", "se", "theta_end", "theta_end_se", "growth")) == before
    engine.dispose()


def _abilities(engine, columns: tuple[str, ...]) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(f"SELECT user_id, {', '.join(columns)} FROM mirt_ability ORDER BY user_id")
            )
        ]
