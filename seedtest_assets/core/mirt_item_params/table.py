"""The owner of ``mirt_item_params``: every statement against the stored item parameters.

A row is one item of one week's calibration of one model; ``params`` is a JSON object
``{a, b, c, d, n_responses, flagged, flag_reason, fixed, a_se, b_se, c_se, d_se, scale_mean,
scale_sd}``: the SEs on the stored scale (null where not estimated; rows written before the
SEs existed lack them), and the calibration population's theta mean and SD on that scale.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import polars as pl
from sqlalchemy import Connection, and_, func, select

from seedtest_assets.core.warehouse import read_frame, replace_rows
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.schema import FrameSchema

_T = s.mirt_item_params

#: A ``mirt_item_params`` frame as written: every column, ``params`` as JSON text.
ROWS_SCHEMA = s.polars_schema(_T)

#: The ``params`` fields :func:`read_week` unpacks into columns (the JSON object's keys; not
#: table columns, so hand-written).
PARAMS_SCHEMA: FrameSchema = {
    "a": pl.Float64(),
    "b": pl.Float64(),
    "c": pl.Float64(),
    "d": pl.Float64(),
    "flagged": pl.Boolean(),
    "n_responses": pl.Int64(),
    "a_se": pl.Float64(),
    "b_se": pl.Float64(),
    "c_se": pl.Float64(),
    "d_se": pl.Float64(),
    "scale_mean": pl.Float64(),
    "scale_sd": pl.Float64(),
}


def read_week(conn: Connection, week_start: date, model: str) -> pl.DataFrame:
    """Stored parameters of one week and model: ``item_id``, the :data:`PARAMS_SCHEMA`
    fields, ``version`` (empty, with those columns, if none)."""
    rows = read_frame(
        conn,
        select(_T.c.item_id, _T.c.params, _T.c.version).where(
            _T.c.week_start == week_start, _T.c.model == model
        ),
    )
    schema = PARAMS_SCHEMA
    if rows.height == 0:
        return pl.DataFrame(schema={"item_id": pl.String, **schema, "version": pl.String})
    params = pl.DataFrame(
        [{k: p.get(k) for k in schema} for p in map(json.loads, rows["params"])], schema=schema
    )
    return pl.concat([rows.select("item_id"), params, rows.select("version")], how="horizontal")


def replace_week(conn: Connection, week_start: date, model: str, frame: pl.DataFrame) -> int:
    """Replace the week's rows of ``model`` by ``frame`` (:data:`ROWS_SCHEMA`) in the caller's
    transaction; returns the rows written."""
    where = and_(_T.c.week_start == week_start, _T.c.model == model)
    return replace_rows(conn, _T, where, frame)


def week_fitted_at(conn: Connection, week_start: date, model: str) -> datetime | None:
    """When the week's parameters of ``model`` were last written (None: no rows)."""
    return conn.execute(
        select(func.max(_T.c.fitted_at)).where(_T.c.week_start == week_start, _T.c.model == model)
    ).scalar_one()


def latest_week(conn: Connection, model: str, on_or_before: date) -> date | None:
    """The most recent week on or before ``on_or_before`` with parameters for ``model``."""
    return conn.execute(
        select(func.max(_T.c.week_start)).where(
            _T.c.model == model, _T.c.week_start <= on_or_before
        )
    ).scalar_one()
