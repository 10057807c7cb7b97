"""PostgreSQL binary ``COPY`` encoding of polars frames (numpy structured arrays).

PostgreSQL parses no text for a binary COPY: 3x faster than CSV for fixed-width rows.
Used by :func:`seedtest_assets.core.warehouse.db.insert_frame` and the synthetic bulk loader.

Text columns (the product's ids, migration 0008) are binary too: a text field is its UTF-8
bytes, so rows whose text fields have the same byte lengths share one fixed-width layout.
Rows are grouped by (NULL pattern, byte length of each text field) and each group is one
numpy block; generated ids (``u-000123``) or UUIDs have one length, so one block.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    SmallInteger,
    String,
    Table,
)

from seedtest_assets.core.warehouse.db import may_omit

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in microseconds since 1970-01-01
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
_INT_RANGES = {">i2": (-(2**15), 2**15 - 1), ">i4": (-(2**31), 2**31 - 1)}
#: The layout code of a text column (variable width: see the module doc).
TEXT = "text"
#: Above this many distinct (NULL pattern, text lengths) groups, a frame goes as CSV.
MAX_TEXT_GROUPS = 4096


def binary_layout(table: Table, frame: pl.DataFrame) -> list[tuple[str, str]] | None:
    """``[(column, numpy big-endian dtype)]`` for a binary COPY of ``frame`` into ``table``.

    ``None`` when a column has no binary form here (JSON, ...) or the text fields have more
    than ``MAX_TEXT_GROUPS`` length combinations; columns are those of ``table`` present in
    ``frame``, in table order.
    """
    layout: list[tuple[str, str]] = []
    for col in table.columns:
        if col.name not in frame.columns:
            if not may_omit(col):
                raise ValueError(f"{table.name}: frame lacks column {col.name!r}")
            continue
        t = col.type
        # Order matters: BigInteger and SmallInteger are subclasses of Integer.
        if isinstance(t, Boolean):
            code = "u1"
        elif isinstance(t, BigInteger):
            code = ">i8"
        elif isinstance(t, SmallInteger):
            code = ">i2"
        elif isinstance(t, Integer):
            code = ">i4"
        elif isinstance(t, Float) and (t.precision is None or t.precision > 24):
            code = ">f8"  # FLOAT without precision is double precision on PostgreSQL
        elif isinstance(t, DateTime | Date):
            code = ">i8" if isinstance(t, DateTime) else ">i4"
        elif (
            isinstance(t, String) and not isinstance(t, JSON) and frame[col.name].dtype == pl.String
        ):
            code = TEXT  # Text is a String subclass; JSON text goes as CSV
        else:
            return None
        layout.append((col.name, code))
    if text_groups(frame, layout) > MAX_TEXT_GROUPS:
        return None  # ids of very many lengths: one block per group would cost more than CSV
    return layout


def _column_values(s: pl.Series, code: str) -> np.ndarray:
    """A column as numpy values in PostgreSQL's binary units (nulls filled with 0)."""
    if s.dtype == pl.Datetime:
        v = s.dt.cast_time_unit("us").cast(pl.Int64).fill_null(0).to_numpy() - _PG_EPOCH_US
    elif s.dtype == pl.Date:
        v = s.cast(pl.Int32).fill_null(0).to_numpy().astype(np.int64) - _PG_EPOCH_DAYS
    elif s.dtype == pl.Boolean:
        v = s.fill_null(False).to_numpy()
    else:
        v = s.fill_null(0).to_numpy()
    if code in _INT_RANGES and v.size:
        lo, hi = _INT_RANGES[code]
        if v.min() < lo or v.max() > hi:
            raise ValueError(f"column {s.name!r} has values outside {code} range")
    return v


def _groups(frame: pl.DataFrame, layout: list[tuple[str, str]]) -> pl.DataFrame:
    """One row per (NULL pattern, text byte lengths) group: ``_p`` the pattern (bit j: field j
    is NULL), ``_l{j}`` each text field's byte length, ``rows`` the frame's row indices."""
    keys = [pl.lit(0, dtype=pl.Int64).alias("_p")]
    pattern = pl.lit(0, dtype=pl.Int64)
    for j, (name, code) in enumerate(layout):
        if frame[name].null_count():
            pattern = pattern | (pl.col(name).is_null().cast(pl.Int64) * (1 << j))
        if code == TEXT:
            keys.append(pl.col(name).str.len_bytes().fill_null(0).cast(pl.Int64).alias(f"_l{j}"))
    keys[0] = pattern.alias("_p")
    return (
        frame.select(keys)
        .with_row_index("_row")
        .group_by([k.meta.output_name() for k in keys], maintain_order=True)
        .agg(rows=pl.col("_row"))
    )


def _text_values(s: pl.Series, width: int) -> np.ndarray:
    """``s`` (no NULLs, every value ``width`` UTF-8 bytes) as a numpy ``S{width}`` array,
    read straight from its Arrow data buffer."""
    arr = s.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    _, offsets, data = arr.buffers()
    first = int(np.frombuffer(offsets, dtype=np.int64, count=1, offset=8 * arr.offset)[0])
    return np.frombuffer(data, dtype=f"S{width}", count=len(s), offset=first)


def text_groups(frame: pl.DataFrame, layout: list[tuple[str, str]]) -> int:
    """How many blocks :func:`binary_tuples` would write (compare with ``MAX_TEXT_GROUPS``)."""
    if not any(code == TEXT for _, code in layout):
        return 1
    return _groups(frame, layout).height


def binary_tuples(frame: pl.DataFrame, layout: list[tuple[str, str]]) -> Iterator[memoryview]:
    """PostgreSQL binary-COPY tuples for ``frame`` (no file header/trailer), as byte blocks.

    Each tuple is ``int16 field count`` then per field ``int32 length`` + big-endian value (a
    text field: its UTF-8 bytes), or length -1 for NULL. A numpy structured array lays out a
    whole block at once; rows with a different pattern of NULLs or text lengths have a
    different width, so each such group present becomes its own block (row order across
    blocks is not preserved - irrelevant for a table).
    """
    fixed = {
        j: _column_values(frame[name], code)
        for j, (name, code) in enumerate(layout)
        if code != TEXT
    }
    groups = _groups(frame, layout)
    single = groups.height == 1
    for g in groups.iter_rows(named=True):
        code = g["_p"]
        rows = None if single else np.asarray(g["rows"], dtype=np.int64)
        n = frame.height if rows is None else rows.size
        null_cols = {j for j in range(len(layout)) if code >> j & 1}
        fields: list[tuple[str, str]] = [("n", ">i2")]
        widths: dict[int, int] = {}
        for j, (_, dtype) in enumerate(layout):
            fields.append((f"len{j}", ">i4"))
            if j in null_cols:
                continue
            if dtype == TEXT:
                widths[j] = g[f"_l{j}"]
                if widths[j]:
                    fields.append((f"val{j}", f"S{widths[j]}"))
            else:
                fields.append((f"val{j}", dtype))
        block = np.empty(n, dtype=np.dtype(fields))
        block["n"] = len(layout)
        for j, (name, dtype) in enumerate(layout):
            if j in null_cols:
                block[f"len{j}"] = -1
            elif dtype == TEXT:
                block[f"len{j}"] = widths[j]
                if widths[j]:
                    col = frame[name] if rows is None else frame[name].gather(rows)
                    block[f"val{j}"] = _text_values(col, widths[j])
            else:
                block[f"len{j}"] = np.dtype(dtype).itemsize
                block[f"val{j}"] = fixed[j] if rows is None else fixed[j][rows]
        yield block.view(np.uint8).data  # a memoryview, no copy; psycopg takes any buffer
