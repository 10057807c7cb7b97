"""Engines, migrations and fast frame I/O for the warehouse (SQLite or PostgreSQL).

Reads and writes move polars frames. On PostgreSQL both directions use ``COPY`` through the
psycopg 3 connection underneath SQLAlchemy (inside the caller's transaction); on SQLite they use
plain SQLAlchemy Core statements. Statements are always SQLAlchemy Core objects with bound
parameters: no SQL is ever assembled from user input.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
import polars as pl
import psycopg
import psycopg.conninfo
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.sql import ColumnElement, Select

from seedtest_assets.core import settings
from seedtest_assets.core.warehouse import schema
from seedtest_assets.core.warehouse.schema import FrameSchema, polars_dtype

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default: :func:`settings.database_url`).

    SQLite gets WAL mode and a busy timeout so the Dagster webserver, daemon and runs can share
    the file.
    """
    url = settings.normalize_database_url(url) if url else settings.database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def set_wal(cursor, attempts: int = 100, pause: float = 0.1) -> None:
    """``PRAGMA journal_mode=WAL`` on a SQLite cursor, retried while the file is locked.

    Switching the journal mode of a new file does not wait on SQLite's busy timeout: a
    second process opening the file while the first one creates the schema got "database
    is locked" at once (seen once in the full suite's two-concurrent-upgrades test).
    """
    import sqlite3
    import time as _time

    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            _time.sleep(pause)


def is_postgres(bind: Engine | Connection) -> bool:
    """True when ``bind`` talks to PostgreSQL."""
    return bind.dialect.name == "postgresql"


def alembic_config(url: str):
    """An Alembic ``Config`` pointing at the packaged migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> str:
    """Apply migrations up to ``revision`` (one transaction, under the migration lock:
    :mod:`seedtest_assets.core.warehouse.migrate`); returns the revision now current."""
    from seedtest_assets.core.warehouse.migrate import migrate

    return migrate(url or settings.database_url(), revision).after


def downgrade(url: str, revision: str, *, allow_data_loss: bool = False) -> str:
    """Revert migrations down to ``revision`` (one transaction, under the migration lock);
    returns the revision now current.

    Raises:
        MigrationRefused: a step would drop data and ``allow_data_loss`` is not set.
    """
    from seedtest_assets.core.warehouse.migrate import migrate

    return migrate(url, revision, downgrade=True, allow_data_loss=allow_data_loss).after


# --------------------------------------------------------------------------- reads
def _polars_dtype_for(column) -> pl.DataType:
    """The polars dtype of a result column (JSON and text -> String)."""
    return polars_dtype(column.type)


def frame_schema(stmt: Select) -> FrameSchema:
    """The polars schema of a Core ``select``'s result columns."""
    return {c.key: _polars_dtype_for(c) for c in stmt.selected_columns}


def read_frame(conn: Connection, stmt: Select) -> pl.DataFrame:
    """Run a Core ``select`` and return its rows as a polars frame with a stable schema.

    JSON columns arrive as their JSON text (String) on both backends.

    On PostgreSQL the query runs as ``COPY (...) TO STDOUT`` (10x faster than row fetching
    for 10^5-10^6 rows); parameters are bound by psycopg, never formatted into the text.
    """
    schema = frame_schema(stmt)
    if is_postgres(conn):
        return _read_frame_copy(conn, stmt, schema)
    rows = conn.execute(_json_as_text(stmt)).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def _read_rows(conn: Connection, stmt: Select) -> pl.DataFrame:
    """:func:`read_frame` by fetching rows (what SQLite does): for small results. Built column
    by column: half the time of a row-oriented frame (0.8 against 1.6 ms for 1,258 rows of
    12 columns, the online update's read of 16 students)."""
    rows = conn.execute(_json_as_text(stmt)).all()
    schema = frame_schema(stmt)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pl.DataFrame(
        [
            pl.Series(name, values, dtype=dtype)
            for (name, dtype), values in zip(schema.items(), columns, strict=True)
        ]
    )


def read_frames(
    engine: Engine, stmts: Sequence[Select], *, bulk: bool = True
) -> list[pl.DataFrame]:
    """Several Core selects as polars frames (schemas as :func:`read_frame`), read in one
    snapshot, for the large reads (a calibration window: 10M rows).

    On PostgreSQL they run on an ADBC connection (``adbc-driver-postgresql``: binary COPY
    decoded into Arrow in C++; the psycopg CSV path of :func:`read_frame` spends 6 s
    iterating 10M row messages in Python and 13 s parsing) in one ``REPEATABLE READ READ
    ONLY`` transaction. ``bulk=False`` (a few students' rows: the online update) reads them
    with :func:`read_frame` on a pooled connection in one ``REPEATABLE READ`` transaction
    instead, because a new ADBC connection costs ~25 ms. Elsewhere: :func:`read_frame` on
    one connection.
    """
    if not is_postgres(engine):
        with engine.connect() as conn:
            return [read_frame(conn, stmt) for stmt in stmts]
    if not bulk:
        rr = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with rr as conn, conn.begin():
            # Per-row index probes look expensive to the planner, which would then spend
            # ~8 ms compiling them (JIT) for a query that runs in a few.
            conn.execute(text("SET LOCAL jit = off"))
            # A few hundred rows: fetched as rows (a COPY's set-up and CSV parse cost more).
            return [_read_rows(conn, stmt) for stmt in stmts]
    # ADBC reads by COPY only for a query without parameters (with them it fetches rows: 20 s
    # instead of 12.5 s here), so the parameters are bound client-side by psycopg's own
    # quoting (what it does for COPY in read_frame), never formatted by us.
    with engine.connect() as sa_conn:
        raw = sa_conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        quoting = psycopg.ClientCursor(raw)
        # The very parameters libpq connected with (whatever form DATABASE_URL took:
        # URL, query options, keywords, PGPASSWORD), as a conninfo string for ADBC.
        uri = psycopg.conninfo.make_conninfo(
            **{o.keyword.decode(): o.val.decode() for o in raw.pgconn.info if o.val is not None}
        )
        queries = []
        for stmt in stmts:
            compiled = stmt.compile(
                dialect=sa_conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            queries.append(quoting.mogrify(compiled.string, compiled.params))
    frames = []
    with adbc.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for stmt, query in zip(stmts, queries, strict=True):
            cur.execute(query)
            frames.append(_conform(pl.from_arrow(cur.fetch_arrow_table()), frame_schema(stmt)))
        conn.rollback()
    return frames


def _conform(frame: pl.DataFrame | pl.Series, schema: FrameSchema) -> pl.DataFrame:
    """An Arrow result as ``schema``: its names, our dtypes (ADBC gives INTEGER as Int32, a
    ``timestamptz`` as UTC-aware; ours are Int64 and naive UTC)."""
    assert isinstance(frame, pl.DataFrame)
    frame = frame.rename(dict(zip(frame.columns, schema, strict=True)))
    fixes = []
    for name in schema:
        got = frame.schema[name]
        if isinstance(got, pl.Datetime) and got.time_zone is not None:
            fixes.append(pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame.with_columns(fixes).cast(dict(schema))


def _json_as_text(stmt: Select) -> Select:
    """``stmt`` with its JSON result columns read as text (SQLAlchemy would decode them)."""
    cols = list(stmt.selected_columns)
    if not any(isinstance(c.type, JSON) for c in cols):
        return stmt
    return stmt.with_only_columns(
        *[type_coerce(c, Text()).label(c.key) if isinstance(c.type, JSON) else c for c in cols],
        maintain_column_froms=True,
    )


def _read_frame_copy(conn: Connection, stmt: Select, schema: FrameSchema) -> pl.DataFrame:
    """PostgreSQL: ``COPY (stmt) TO STDOUT`` as CSV, parsed by polars.

    (Measured on 126k attempt rows: binary COPY out with NULL-safe fixed-width wrapping and
    integer timestamps were both no faster: the server's query dominates, and polars parses
    the CSV in ~35 ms.)
    """
    # render_postcompile: an expanding IN list (``col.in_(ids)``) becomes one bound parameter
    # per value; without it the text keeps a ``__[POSTCOMPILE_...]`` placeholder COPY rejects.
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection always has its driver connection
    buf = io.BytesIO()
    sql = f"COPY ({compiled.string}) TO STDOUT (FORMAT CSV, HEADER)"
    with raw.cursor() as cur, cur.copy(sql, compiled.params) as copy:
        for block in copy:
            buf.write(block)
    buf.seek(0)
    # Booleans arrive as t/f: read them as text and convert.
    overrides = {k: (pl.String() if v == pl.Boolean() else v) for k, v in schema.items()}
    df = pl.read_csv(buf, schema=overrides, try_parse_dates=False)
    return df.with_columns(
        [pl.col(k).eq("t").alias(k) for k, v in schema.items() if v == pl.Boolean()]
    )


# --------------------------------------------------------------------------- writes
def _frame_for_table(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` restricted to ``table``'s columns, in table order (missing -> error).

    Integer values bound for a text id column are written as their decimal text (``7`` ->
    ``'7'``, as migration 0008 converted stored integer ids), so a frame of integer ids
    lands as the same ids on both backends rather than failing on PostgreSQL's COPY.
    """
    missing = [c.name for c in table.columns if c.name not in frame.columns and not may_omit(c)]
    if missing:
        raise ValueError(f"{table.name}: frame lacks columns {missing}")
    cols = [c.name for c in table.columns if c.name in frame.columns]
    as_text = [
        pl.col(c.name).cast(pl.String)
        for c in table.columns
        if c.name in frame.columns
        and isinstance(c.type, Text)
        and not isinstance(c.type, JSON)
        and frame.schema[c.name].is_integer()
    ]
    return frame.select(cols).with_columns(as_text)


def may_omit(column) -> bool:
    """True when an insert may leave ``column`` out (nullable, defaulted or auto-increment)."""
    return column.autoincrement is True or column.server_default is not None or column.nullable


#: Up to this many rows (no JSON column, ``few_rows``) PostgreSQL inserts by ``INSERT``.
SMALL_INSERT_ROWS = 200


def insert_frame(
    conn: Connection, table: Table, frame: pl.DataFrame, *, few_rows: bool = False
) -> int:
    """Append ``frame``'s rows to ``table`` inside the caller's transaction; returns the count.

    JSON columns take JSON *text* (a String column, e.g. from ``struct.json_encode``) holding
    an object per row; it is stored as that JSON on both backends, so ``kpis->>'I_t'`` and
    ``json_extract(kpis, '$.I_t')`` read it.

    PostgreSQL: ``COPY ... FROM STDIN``. With ``few_rows`` (the online update's one row per
    student), up to :data:`SMALL_INSERT_ROWS` rows without JSON columns go as an ``INSERT``
    instead, because preparing a COPY costs more than the rows (measured: 12% of the
    θ-update service's scoring time); errors then arrive wrapped by SQLAlchemy. SQLite:
    ``executemany`` of a Core insert.
    """
    if frame.height == 0:
        return 0
    frame = _frame_for_table(table, frame)
    json_cols = _check_json_columns(table, frame)
    if is_postgres(conn) and (not few_rows or json_cols or frame.height > SMALL_INSERT_ROWS):
        _copy_in(conn, table, frame)
        return frame.height
    # Bind JSON text as text: the JSON type would encode the string again (a JSON string
    # holding JSON, which no SQL reader can look into).
    stmt = table.insert()
    if json_cols:
        stmt = stmt.values({c: bindparam(c, type_=Text()) for c in json_cols})
    conn.execute(stmt, frame.to_dicts())
    return frame.height


def _check_json_columns(table: Table, frame: pl.DataFrame) -> list[str]:
    """The JSON columns of ``table`` in ``frame``; each must be text holding JSON objects."""
    cols = [c.name for c in table.columns if isinstance(c.type, JSON) and c.name in frame.columns]
    for name in cols:
        col = frame[name]
        if col.dtype != pl.String:
            raise TypeError(f"{table.name}.{name}: JSON columns take JSON text, got {col.dtype}")
        bad = col.drop_nulls().str.strip_chars_start().str.starts_with("{").not_().sum()
        if bad:
            raise ValueError(f"{table.name}.{name}: {bad} value(s) are not JSON objects")
    return cols


def _copy_in(conn: Connection, table: Table, frame: pl.DataFrame) -> None:
    """``COPY table FROM STDIN``: binary for fixed-width columns, CSV when text is involved."""
    from seedtest_assets.core.warehouse.pgbinary import (
        COPY_HEADER,
        COPY_TRAILER,
        binary_layout,
        binary_tuples,
    )

    prep = conn.dialect.identifier_preparer
    cols = ", ".join(prep.quote(c) for c in frame.columns)  # names from our own metadata
    target = f"{prep.format_table(table)} ({cols})"
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection always has its driver connection
    layout = binary_layout(table, frame)
    with raw.cursor() as cur:
        if layout is not None:
            with cur.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(COPY_HEADER)
                for block in binary_tuples(frame, layout):
                    copy.write(block)
                copy.write(COPY_TRAILER)
            return
        buf = io.BytesIO()
        frame.write_csv(buf, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f")
        buf.seek(0)
        with cur.copy(f"COPY {target} FROM STDIN (FORMAT CSV)") as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)


class EmptyReplaceError(ValueError):
    """A partition write would delete stored rows and insert none (rolled back)."""


def replace_rows(
    conn: Connection,
    table: Table,
    where: ColumnElement[bool],
    frame: pl.DataFrame,
    *,
    allow_empty: bool = False,
) -> int:
    """Delete the rows matching ``where`` and insert ``frame``, in the caller's transaction.

    This is how every partitioned output is written: re-running a partition replaces it.

    - **Concurrent writers serialize.** On PostgreSQL the transaction first takes an advisory
      lock of ``table`` (released at commit or rollback), so two runs replacing the same
      partition at once run one after the other and the second replaces the first's rows;
      without it, both DELETEs saw the old rows and the second INSERT failed with a random
      ``UniqueViolation``. (SQLite has one writer at a time anyway.)
    - **Nothing is replaced by nothing.** If ``frame`` is empty but rows matched ``where``,
      :class:`EmptyReplaceError` is raised (the caller's transaction rolls back, the rows
      stay) unless ``allow_empty``: a run that lost its input must fail loudly, not empty a
      partition and pass its checks.
    """
    if is_postgres(conn):
        conn.execute(select(func.pg_advisory_xact_lock(table_lock_key(table.name))))
    deleted = conn.execute(table.delete().where(where)).rowcount
    if frame.height == 0 and deleted and not allow_empty:
        raise EmptyReplaceError(
            f"{table.name}: the new partition has no rows but {deleted} are stored; refusing "
            "to replace them with nothing (did the input vanish?). Nothing was changed."
        )
    return insert_frame(conn, table, frame)


def table_lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for writes to table ``name``."""
    digest = hashlib.blake2b(f"seedtest:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()``: one transaction, committed on success, rolled back on error."""
    with engine.begin() as conn:
        yield conn


def table_counts(conn: Connection, tables: Mapping[str, Table]) -> dict[str, int]:
    """Row counts per table name (for summaries and tests)."""
    return {
        name: conn.execute(select(func.count()).select_from(t)).scalar_one()
        for name, t in tables.items()
    }


def row_counts(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """Row counts of the warehouse tables ``names`` (for summaries): a whole-table statement
    of the warehouse itself, no table's business."""
    return table_counts(conn, {n: schema.metadata.tables[n] for n in names})


def delete_all(conn: Connection, names: Sequence[str]) -> None:
    """Empty the warehouse tables ``names`` in the caller's transaction (a fresh demo)."""
    for n in names:
        conn.execute(schema.metadata.tables[n].delete())
