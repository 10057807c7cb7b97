"""The owner of ``attempts``: every statement against the raw attempts (Core, no Dagster).

Readers for a time window (what validation reads), the whole-table anomaly counts of the
``attempts`` source check, the sensor's new-row scan and the demo's feed errors.

Which rows a day owns
    A raw attempt belongs to the UTC day of its ``attempted_at``. On PostgreSQL the column is
    typed and that is a plain range. SQLite stores any value in any column, so there
    (:func:`in_days`):

    - a text timestamp belongs to the day its text starts with: the bounds are the bare dates
      ``'YYYY-MM-DD'``, so ``'2026-03-02 00:00:00'``, ``'…00:00:00.000000'`` and
      ``'2026-03-02T…'`` all land in 2026-03-02 (a bound ``'2026-03-02 00:00:00.000000'``, as
      SQLAlchemy would bind it, sorts after ``'2026-03-02 00:00:00'`` and lost that row to the
      previous day). Text that is dated but not a timestamp is read, and quarantined;
    - a number is read as Unix seconds, or milliseconds from ``EPOCH_MS_FROM`` up, and belongs
      to the day it denotes (then quarantined as ``numeric_timestamp``);
    - a row whose ``id`` is not an integer belongs to no day: no reject record could carry it.
      The ``attempts`` source check reports such rows, like NULL or undated timestamps.

    All three are index range scans on ``attempted_at``.

How the columns are read
    On SQLite every attempt column but ``id`` is read as text (``CAST(… AS TEXT)``) and parsed
    by :func:`~seedtest_assets.core.attempts.validate.parse_attempts`, so a value of the wrong type
    is quarantined with its raw value instead of failing the frame (PostgreSQL's typed columns
    cannot hold one). A BLOB is read as :func:`~seedtest_assets.core.ids.blob_text` (its bytes
    in hex behind a control character), not as ``CAST(… AS TEXT)``: bytes that are not UTF-8
    would fail the driver's decoding of the whole result ("Could not decode to UTF-8"), and so
    every sensor tick and that day's run. The id rule refuses that text (``bad_id``), the other
    columns' parsers quarantine it as ``unparseable_value``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import polars as pl
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from seedtest_assets.core.ids import BLOB_MARK
from seedtest_assets.core.source.relations import read_column, source_tables
from seedtest_assets.core.warehouse import insert_frame, is_postgres, read_frame, read_frames
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.db import frame_schema

#: A number in ``attempted_at`` below this is Unix seconds, from it on milliseconds (10^11 s
#: is the year 5138; 10^11 ms is 1973-03-03).
EPOCH_MS_FROM = 100_000_000_000

#: The polars schema of an ``attempts`` frame (all columns, table order).
ATTEMPT_SCHEMA = s.polars_schema(s.attempts)

#: The raw attempt columns read as text on SQLite (``id`` is read as an integer: rows whose
#: id is not one belong to no day).
TEXT_COLUMNS = (
    "user_id",
    "session_id",
    "item_id",
    "topic_id",
    "is_correct",
    "response_time_ms",
    "hints_used",
    "attempted_at",
)


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """``[start, end)`` days as naive-UTC datetimes."""
    return datetime.combine(start, time()), datetime.combine(end, time())


def _epoch_seconds(day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=UTC).timestamp())


class _InDays(FunctionElement):
    """``attempted_at`` in the UTC days ``[start, end)`` and an integer ``id`` (see module
    doc); compiled per dialect. Not cached: the bounds are rendered at compile time."""

    name = "in_days"
    type = Boolean()
    inherit_cache = False

    def __init__(self, attempted_at, id_, start: date, end: date):
        self.start, self.end = start, end
        super().__init__(attempted_at, id_)


@compiles(_InDays)
def _in_days_typed(element: _InDays, compiler, **kw) -> str:
    ts, _ = element.clauses.clauses
    lo, hi = day_bounds(element.start, element.end)
    return f"({compiler.process(and_(ts >= lo, ts < hi), **kw)})"


@compiles(_InDays, "sqlite")
def _in_days_sqlite(element: _InDays, compiler, **kw) -> str:
    ts, id_ = element.clauses.clauses
    txt, num = type_coerce(ts, String()), type_coerce(ts, Float())
    lo_s, hi_s = _epoch_seconds(element.start), _epoch_seconds(element.end)
    # SQLite orders NULL < numbers < text: each range below only ever matches its own kind.
    cond = and_(
        func.typeof(id_) == "integer",
        or_(
            and_(txt >= element.start.isoformat(), txt < element.end.isoformat()),
            and_(num >= lo_s, num < min(hi_s, EPOCH_MS_FROM)),
            and_(num >= max(lo_s * 1000, EPOCH_MS_FROM), num < hi_s * 1000),
        ),
    )
    return f"({compiler.process(cond, **kw)})"


def in_days(table, start: date, end: date) -> ColumnElement[bool]:
    """The rows of ``attempts`` (or an alias of it) that the UTC days ``[start, end)`` own."""
    return _InDays(table.c.attempted_at, table.c.id, start, end)


class _IntegerId(FunctionElement):
    """``id`` holds an integer: always on PostgreSQL; ``typeof(id) = 'integer'`` on SQLite."""

    name = "integer_id"
    type = Boolean()
    inherit_cache = True


@compiles(_IntegerId)
def _integer_id_typed(element: _IntegerId, compiler, **kw) -> str:
    return compiler.process(true(), **kw)


@compiles(_IntegerId, "sqlite")
def _integer_id_sqlite(element: _IntegerId, compiler, **kw) -> str:
    (id_,) = element.clauses.clauses
    return f"({compiler.process(func.typeof(id_) == 'integer', **kw)})"


def integer_id(table) -> ColumnElement[bool]:
    """Rows whose ``id`` is an integer (the only ones a cursor or a reject can key on)."""
    return _IntegerId(table.c.id)


def sqlite_text(column: Column, label: str | None = None) -> ColumnElement[str]:
    """``column`` read as text on SQLite, whatever it stores: ``CAST(… AS TEXT)``, but a BLOB
    as :func:`~seedtest_assets.core.ids.blob_text` (never bytes the driver cannot decode)."""
    blob = func.char(ord(BLOB_MARK)).op("||")(func.hex(column))
    return case((func.typeof(column) == "blob", blob), else_=cast(column, Text())).label(
        label or column.key
    )


def shown_raw(value: str | None) -> str:
    """A raw value read by :func:`sqlite_text` as people read it: a BLOB as ``x'FFFE'``, any
    other value quoted."""
    if isinstance(value, str) and value.startswith(BLOB_MARK):
        return f"x'{value[1:]}'"
    return repr(value)


def as_text(bind: Engine | Connection) -> bool:
    """Whether attempt columns are read as text and parsed (SQLite) or typed (PostgreSQL)."""
    return bind.dialect.name == "sqlite"


def _read_where(table, start: date, end: date, user_ids: Sequence[str] | None):
    cond = in_days(table, start, end)
    if user_ids is not None:  # bound as an expanding IN list, never formatted into SQL
        cond = and_(cond, table.c.user_id.in_([str(u) for u in user_ids]))
    return cond


def attempts_window_select(
    start: date,
    end: date,
    user_ids: Sequence[str] | None = None,
    *,
    text_columns: bool = False,
    lookups: bool = True,
) -> Select:
    """Raw attempts the days ``[start, end)`` own, plus the lookups validation needs.

    ``user_known`` and ``item_topic_id`` come from outer joins so the database does the
    membership tests and only the attempt rows travel (``lookups=False``: without them, see
    :func:`read_window_and_copies`). ``text_columns``: read ``TEXT_COLUMNS`` as text, for
    :func:`~seedtest_assets.core.attempts.validate.parse_attempts` (what SQLite needs, see
    :func:`as_text`).
    """
    src = source_tables()
    a, u, i = src.attempts, src.users, src.items
    cols = [
        sqlite_text(a.c[c], c) if text_columns and c in TEXT_COLUMNS else read_column(a.c[c])
        for c in ("id", *TEXT_COLUMNS)
    ]
    # The joins compare the relations' own columns (no casts: the product's indexes serve
    # them); only the SELECT list casts its ids to text (read_column).
    if not lookups:
        return select(*cols).where(_read_where(a, start, end, user_ids))
    return (
        select(
            *cols,
            u.c.user_id.is_not(None).label("user_known"),
            read_column(i.c.topic_id, "item_topic_id"),
        )
        .select_from(
            a.outerjoin(u, u.c.user_id == a.c.user_id).outerjoin(i, i.c.item_id == a.c.item_id)
        )
        .where(_read_where(a, start, end, user_ids))
    )


#: Windows up to this many days (without a student filter) find other copies by probing the
#: ``id`` index once per window id; longer ones by one semi-join. Measured on PostgreSQL with
#: 2.1M attempts: 1 day (37k ids) probes 0.12 s vs semi-join 0.28 s (a parallel scan of the
#: whole table, so it grows with the table); 7 days 1.3 s vs 0.65 s; 8 weeks 3.7 s vs 0.8 s.
PROBE_MAX_DAYS = 2


def other_copies_select(start: date, end: date, user_ids: Sequence[str] | None = None) -> Select:
    """``id, n_other``: for ids of the rows :func:`attempts_window_select` reads, the number
    of their copies it does not read (other days, no day, other students); ids without such
    copies are left out.

    This is what makes validation a function of the whole table rather than of the window
    (an id with a copy elsewhere is a conflict, however the days were batched). One query: a
    short window (the daily schedule, the sensor) counts each of its ids' copies on the ``id``
    index; a longer one, or one narrowed to students, is a semi-join the planner runs on that
    index or as one scan, whichever is cheaper (``PROBE_MAX_DAYS``).
    """
    a = source_tables().attempts
    o = a.alias("other")
    read = _read_where(a, start, end, user_ids)
    if user_ids is None and (end - start).days <= PROBE_MAX_DAYS:
        w = select(a.c.id, func.count().label("n_in")).where(read).group_by(a.c.id).subquery()
        # A scalar subquery in the select list is never flattened into a join: one index
        # probe per window id, whatever the size of the table.
        total = select(func.count()).select_from(o).where(o.c.id == w.c.id).scalar_subquery()
        t = select(w.c.id, (total - w.c.n_in).label("n_other")).subquery()
        return select(t.c.id, t.c.n_other).where(t.c.n_other > 0)
    window_ids = select(a.c.id).where(read)
    outside = not_(func.coalesce(_read_where(o, start, end, user_ids), false()))
    return (
        select(o.c.id, func.count().label("n_other"))
        .where(o.c.id.in_(window_ids), outside)
        .group_by(o.c.id)
    )


def read_window(
    conn: Connection, start: date, end: date, user_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """The raw window frame of :func:`attempts_window_select` (text columns on SQLite)."""
    return read_frame(
        conn, attempts_window_select(start, end, user_ids, text_columns=as_text(conn))
    )


#: Up to this many students, a student-filtered read on PostgreSQL is one query of index
#: probes (:func:`few_students_select`) on a pooled connection.
FEW_STUDENTS = 1000


def few_students_select(start: date, end: date, user_ids: Sequence[str]) -> Select:
    """PostgreSQL: the rows of :func:`attempts_window_select` for a few students, with the
    lookups and each row's total number of copies of its id (``id_copies``) as per-row index
    probes, in one query (:func:`_split_copies` derives the other copies from it).

    Why: the online update reads one student's ~150 rows per request. The joins of
    :func:`attempts_window_select` made the planner hash all of ``users`` (21 ms at 100k
    students) once a few dozen students were asked for, and :func:`other_copies_select`
    scanned the same rows a second time. Aggregates keep each probe to one value even if
    the product's ``items`` relation repeated an item.
    """
    src = source_tables()
    a, u, i = src.attempts, src.users, src.items
    o = a.alias("other")
    cols = [read_column(a.c[c]) for c in ("id", *TEXT_COLUMNS)]
    # A counted probe, not EXISTS: the planner turns EXISTS into a hash of all of users.
    known = select(func.count()).select_from(u).where(u.c.user_id == a.c.user_id)
    topic = select(func.min(read_column(i.c.topic_id))).where(i.c.item_id == a.c.item_id)
    copies = select(func.count()).select_from(o).where(o.c.id == a.c.id)
    # PostgreSQL's typed range of in_days, as bound parameters: SQLAlchemy then compiles the
    # statement once and reuses it (in_days renders its bounds, which disables that cache: 3 ms
    # of compiling per request).
    lo, hi = day_bounds(start, end)
    return select(
        *cols,
        (known.scalar_subquery() > 0).label("user_known"),
        topic.scalar_subquery().label("item_topic_id"),
        copies.scalar_subquery().label("id_copies"),
    ).where(
        a.c.attempted_at >= lo,
        a.c.attempted_at < hi,
        a.c.user_id.in_([str(u) for u in user_ids]),
    )


@functools.cache
def _other_copies_schema() -> dict[Any, pl.DataType]:
    """The frame schema of :func:`other_copies_select` (the same for any window)."""
    return dict(frame_schema(other_copies_select(date(2000, 1, 3), date(2000, 1, 4), ["x"])))


def _split_copies(
    raw: pl.DataFrame, start: date, end: date, user_ids: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the window frame, the other copies) from :func:`few_students_select`'s rows: an id's
    other copies are its copies in the table less those the frame holds (as
    :func:`other_copies_select` counts them)."""
    schema = _other_copies_schema()
    most = raw["id_copies"].max()
    if most is None or int(most) <= 1:  # type: ignore[arg-type]
        # No id has a second copy anywhere (the usual case): no group can have one outside.
        return raw.drop("id_copies"), pl.DataFrame(schema=schema)
    counted = (
        raw.filter(pl.col("id").is_not_null())
        .group_by("id")
        .agg(n_other=pl.col("id_copies").first() - pl.len())
    )
    others = counted.filter(pl.col("n_other") > 0).select(list(schema)).cast(dict(schema))
    return raw.drop("id_copies"), others


def read_window_and_copies(
    engine: Engine, start: date, end: date, user_ids: Sequence[str] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`read_window` and :func:`read_other_copies` in one snapshot, the bulk way
    (:func:`~seedtest_assets.core.warehouse.db.read_frames`): for the long windows.

    A whole window on PostgreSQL reads the attempts without the lookup joins and joins the
    users' and items' ids here: the two hash joins cost the server 8-9 s of the 20 s read of a
    10.6M-row window, the ids of both relations 0.2 s and the joins in polars 1.4 s. Same
    rows: plain left joins on the same (text) ids.
    """
    if user_ids is not None and len(user_ids) <= FEW_STUDENTS and is_postgres(engine):
        (raw,) = read_frames(engine, [few_students_select(start, end, user_ids)], bulk=False)
        return _split_copies(raw, start, end, user_ids)
    if user_ids is not None or not is_postgres(engine):
        raw, others = read_frames(
            engine,
            [
                attempts_window_select(start, end, user_ids, text_columns=as_text(engine)),
                other_copies_select(start, end, user_ids),
            ],
        )
        return raw, others
    src = source_tables()
    raw, others, users, items = read_frames(
        engine,
        [
            attempts_window_select(start, end, lookups=False),
            other_copies_select(start, end),
            select(read_column(src.users.c.user_id)),
            select(read_column(src.items.c.item_id), read_column(src.items.c.topic_id)),
        ],
    )
    known = users.select("user_id", user_known=pl.lit(True))
    joined = raw.join(known, on="user_id", how="left", maintain_order="left").join(
        items.rename({"topic_id": "item_topic_id"}),
        on="item_id",
        how="left",
        maintain_order="left",
    )
    return joined.with_columns(pl.col("user_known").fill_null(False)), others


def read_other_copies(
    conn: Connection, start: date, end: date, user_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """:func:`other_copies_select` as a frame (``id``, ``n_other``)."""
    return read_frame(conn, other_copies_select(start, end, user_ids))


#: SQLite GLOB of a text that starts like a date, so that some day's window reads it.
_DATED_TEXT = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"


def source_anomalies(conn: Connection, future: datetime, sample: int = 10) -> dict[str, Any]:
    """Whole-table counts of raw rows no daily partition can own or reconcile, with samples.

    Keys: ``null_attempted_at``, ``future_attempted_at`` (later than ``future``),
    ``duplicated_ids`` (ids used by more than one row), ``undatable_attempted_at`` (SQLite:
    neither a number nor text starting with a date), ``numeric_attempted_at`` (SQLite:
    numbers; filed under their day and quarantined there), ``non_integer_ids`` (SQLite),
    and ``sample_undatable_ids``, ``sample_duplicated_ids``, ``sample_undatable``
    (``"id …: attempted_at='…'"``), ``sample_non_integer_ids`` (the raw ids, quoted).
    """
    a = source_tables().attempts
    ts, null_ts = a.c.attempted_at, a.c.attempted_at.is_(None)
    is_future: ColumnElement[bool]
    undatable: ColumnElement[bool]
    numeric: ColumnElement[bool]
    bad_id: ColumnElement[bool]
    if as_text(conn):
        kind = func.typeof(ts)
        txt, num = type_coerce(ts, String()), type_coerce(ts, Float())
        fs = future.replace(tzinfo=UTC).timestamp()
        is_future = or_(
            and_(kind == "text", func.replace(txt, "T", " ") > f"{future:%Y-%m-%d %H:%M:%S.%f}"),
            and_(kind.in_(("integer", "real")), num < EPOCH_MS_FROM, num > fs),
            and_(kind.in_(("integer", "real")), num >= EPOCH_MS_FROM, num > fs * 1000),
        )
        undatable = or_(kind == "blob", and_(kind == "text", not_(txt.op("GLOB")(_DATED_TEXT))))
        numeric = kind.in_(("integer", "real"))
        bad_id = func.typeof(a.c.id) != "integer"
    else:
        is_future, undatable, numeric, bad_id = ts > future, false(), false(), false()
    dup_ids = select(a.c.id).group_by(a.c.id).having(func.count() > 1).subquery()

    def count(cond) -> int:
        return int(conn.execute(select(func.count()).select_from(a).where(cond)).scalar_one())

    out: dict[str, Any] = {
        "null_attempted_at": count(null_ts),
        "future_attempted_at": count(and_(is_future, not_(undatable))),
        "duplicated_ids": int(conn.execute(select(func.count()).select_from(dup_ids)).scalar_one()),
        "undatable_attempted_at": count(undatable),
        "numeric_attempted_at": count(numeric),
        "non_integer_ids": count(bad_id),
    }
    out["sample_undatable_ids"] = [
        int(i)
        for i in conn.execute(
            select(a.c.id).where(or_(null_ts, is_future), integer_id(a)).limit(sample)
        ).scalars()
    ]
    out["sample_duplicated_ids"] = [
        i if isinstance(i, int) else repr(i)
        for i in conn.execute(select(dup_ids.c.id).limit(sample)).scalars()
    ]

    # Samples read their raw values as text that cannot fail to decode (a BLOB of any bytes).
    def raw(column: Column) -> ColumnElement[str]:
        return sqlite_text(column) if as_text(conn) else cast(column, Text())

    out["sample_undatable"] = [
        f"id {i}: attempted_at={shown_raw(v)}"
        for i, v in conn.execute(select(raw(a.c.id), raw(ts)).where(undatable).limit(sample)).all()
    ]
    out["sample_non_integer_ids"] = [
        shown_raw(i)
        for i in conn.execute(select(raw(a.c.id)).where(bad_id).limit(sample)).scalars()
    ]
    return out


# --------------------------------------------------------------------------- other readers
def users_with_attempts(start: date, end: date, *, known_distinct: bool = False) -> Select:
    """A ``select`` of the ``user_id`` of the attempts the days ``[start, end)`` own, to use as
    an ``IN`` subquery (``known_distinct``: without NULL ids, each id once)."""
    a = source_tables().attempts
    if not known_distinct:
        return select(a.c.user_id).where(in_days(a, start, end))
    return select(a.c.user_id).where(in_days(a, start, end), a.c.user_id.is_not(None)).distinct()


def count_owned(conn: Connection, start: date, end: date) -> int:
    """Raw attempts the days ``[start, end)`` own (see :func:`in_days`)."""
    a = source_tables().attempts
    return int(conn.execute(select(func.count()).where(in_days(a, start, end))).scalar_one())


# --------------------------------------------------------------------------- the sensor's scan
#: SQLite text the sensor's cursor can order (with the checks of :func:`_orderable_sqlite`):
#: ``YYYY-MM-DD HH:MM:SS`` with a space, then nothing or a fraction of 1 to 6 digits.
_CURSOR_TEXT_GLOB = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]*"


def canonical_text(at: datetime) -> str:
    """``at`` as SQLAlchemy stores a ``DateTime`` on SQLite: ``'YYYY-MM-DD HH:MM:SS.ffffff'``
    (what the generator and every insert through SQLAlchemy write). Of all the texts the
    cursor orders that denote ``at``, this one sorts last."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def lowest_text(at: datetime) -> str:
    """The text denoting ``at`` that sorts first: :func:`canonical_text` without the trailing
    zeros of its fraction (and without the ``.`` when the fraction is zero)."""
    return canonical_text(at).rstrip("0").rstrip(".")


def _orderable_sqlite(table) -> ColumnElement[bool]:
    """SQLite rows the cursor can order: an integer ``id`` and an ``attempted_at`` text of the
    form ``YYYY-MM-DD HH:MM:SS[.f{1,6}]`` that is a real date and time.

    For those texts, text order agrees with time order (a later instant always sorts later,
    :func:`lowest_text` .. :func:`canonical_text` bracket one instant), so the ``attempted_at``
    index gives time order. Not orderable, so never in the scan: NULL, numbers (SQLite sorts
    them before all text), blobs, undatable text, the ``T`` form (``'…T…'`` sorts after every
    space form of its day), zone suffixes, fractions beyond microseconds.
    """
    ts = type_coerce(table.c.attempted_at, String())
    day = func.substr(ts, 1, 10)
    return and_(
        func.typeof(table.c.id) == "integer",
        func.typeof(table.c.attempted_at) == "text",
        ts.op("GLOB")(_CURSOR_TEXT_GLOB),
        func.substr(ts, 12, 2) <= "23",
        # julianday() rolls an impossible date over ('2026-02-30' -> 2026-03-02): a round
        # trip that changes the text rejects it.
        func.date(func.julianday(day)) == day,
        or_(
            func.length(ts) == 19,
            and_(
                func.length(ts).between(21, 26),
                func.substr(ts, 20, 1) == ".",
                not_(func.substr(ts, 21).op("GLOB")("*[^0-9]*")),
            ),
        ),
    )


def _at_or_before(conn: Connection, table, until: datetime) -> ColumnElement[bool]:
    """Orderable rows attempted at or before ``until`` (naive UTC)."""
    if as_text(conn):
        ts = type_coerce(table.c.attempted_at, String())
        return and_(_orderable_sqlite(table), ts <= canonical_text(until))
    return and_(table.c.attempted_at.is_not(None), table.c.attempted_at <= until)


def _after(conn: Connection, table, at: datetime, after_id: int) -> ColumnElement[bool]:
    """``(attempted_at, id) > (at, after_id)``, written so that the leading ``>=`` lets the
    database range-scan the ``attempted_at`` index. On SQLite the bounds are texts
    (:func:`lowest_text`, :func:`canonical_text`) that compare right with every orderable
    text, with or without a fraction."""
    if as_text(conn):
        ts = type_coerce(table.c.attempted_at, String())
        return and_(ts >= lowest_text(at), or_(ts > canonical_text(at), table.c.id > after_id))
    ts = table.c.attempted_at
    return and_(ts >= at, or_(ts > at, table.c.id > after_id))


def _at_instant(conn: Connection, table, at: datetime) -> ColumnElement[bool]:
    """Rows attempted exactly at ``at`` (on SQLite: any orderable text denoting it)."""
    if as_text(conn):
        ts = type_coerce(table.c.attempted_at, String())
        return and_(_orderable_sqlite(table), ts >= lowest_text(at), ts <= canonical_text(at))
    return table.c.attempted_at == at


def _raw_ts(conn: Connection, table) -> ColumnElement[Any]:
    """``attempted_at`` as stored: the text itself on SQLite (SQLAlchemy's own DateTime parsing
    is not :func:`_instant`'s), the typed value on PostgreSQL."""
    return type_coerce(table.c.attempted_at, String()) if as_text(conn) else table.c.attempted_at


def _instant(value: Any) -> datetime:
    """An ``attempted_at`` value the scan returned (a ``datetime``, or orderable SQLite text)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _scan_select(a, u, text: bool) -> Select:
    """The sensor scans' columns: ``id, user_id, attempted_at, user_known`` under our names
    (``user_id``/``attempted_at`` as text on SQLite, see :func:`as_text`)."""
    return select(
        read_column(a.c.id),
        sqlite_text(a.c.user_id, "user_id") if text else read_column(a.c.user_id),
        sqlite_text(a.c.attempted_at, "attempted_at") if text else read_column(a.c.attempted_at),
        u.c.user_id.is_not(None).label("user_known"),
    ).select_from(a.outerjoin(u, u.c.user_id == a.c.user_id))


def read_after(
    conn: Connection,
    at: datetime | None,
    after_id: int,
    until: datetime,
    limit: int,
) -> pl.DataFrame:
    """At most ``limit`` orderable rows with ``(attempted_at, id) > (at, after_id)`` (``at``
    None: from the first row) and ``attempted_at <= until`` (naive UTC), in
    ``(attempted_at, id)`` order: ``id, user_id, attempted_at, user_known`` (user_id and
    attempted_at as text on SQLite, see :func:`as_text`; ``user_known``: the student is in
    ``users``).

    Orderable: ``attempted_at`` is not NULL and, on SQLite, an integer ``id`` and a timestamp
    text of the form :func:`_orderable_sqlite` accepts. The others are outside the scan (the
    ``attempts`` source check reports NULL, undatable, numeric timestamps and non-integer
    ids; the day windows of validation still read every dated row). On SQLite, rows of one
    instant written in different texts (``'… 10:00:00'``, ``'… 10:00:00.000000'``) come out
    by text, then id; the caller must not cut a batch inside an instant.
    """
    src = source_tables()
    a, u = src.attempts, src.users
    text = as_text(conn)
    cond = _at_or_before(conn, a, until)
    if at is not None:
        cond = and_(cond, _after(conn, a, at, after_id))
    stmt = _scan_select(a, u, text).where(cond).order_by(a.c.attempted_at, a.c.id).limit(limit)
    return read_frame(conn, stmt)


def read_at_instant(
    conn: Connection, at: datetime, after_id: int | None, limit: int
) -> pl.DataFrame:
    """:func:`read_after`'s columns for at most ``limit`` orderable rows attempted exactly at
    ``at`` with ``id > after_id`` (None: every id), in id order, whatever text denotes
    ``at`` on SQLite. For an instant with more rows than a batch holds: ordered by id alone,
    the cursor ``(at, id)`` can walk through it (in :func:`read_after`'s order, a text form
    read later could hold lower ids)."""
    src = source_tables()
    a, u = src.attempts, src.users
    text = as_text(conn)
    cond = _at_instant(conn, a, at)
    if after_id is not None:
        cond = and_(cond, a.c.id > after_id)
    stmt = _scan_select(a, u, text).where(cond).order_by(a.c.id).limit(limit)
    return read_frame(conn, stmt)


def last_position(conn: Connection, until: datetime) -> tuple[datetime | None, int]:
    """The newest orderable ``attempted_at`` at or before ``until`` and the highest id
    attempted then: ``(None, 0)`` when there is none. Two index probes."""
    a = source_tables().attempts
    newest = conn.execute(
        select(_raw_ts(conn, a))
        .where(_at_or_before(conn, a, until))
        .order_by(a.c.attempted_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if newest is None:
        return None, 0
    at = _instant(newest)
    top = conn.execute(select(func.max(a.c.id)).where(_at_instant(conn, a, at))).scalar_one()
    return at, int(top or 0)


def first_after_id(conn: Connection, after_id: int) -> datetime | None:
    """The earliest orderable ``attempted_at`` of the rows with ``id > after_id`` (None: no
    such row): where a version-1 (id) cursor's unhandled rows begin."""
    a = source_tables().attempts
    orderable = _orderable_sqlite(a) if as_text(conn) else a.c.attempted_at.is_not(None)
    first = conn.execute(
        select(func.min(_raw_ts(conn, a))).where(a.c.id > after_id, orderable)
    ).scalar_one()
    return None if first is None else _instant(first)


def max_id(conn: Connection, *, integer_only: bool = True) -> int | None:
    """The largest ``id`` (of the rows whose id is an integer, unless ``integer_only`` is
    False); None for an empty table."""
    a = source_tables().attempts
    stmt = select(func.max(a.c.id))
    if integer_only:
        stmt = stmt.where(integer_id(a))
    return conn.execute(stmt).scalar_one()


def first_rows(conn: Connection, n: int) -> list[dict]:
    """The ``n`` rows of lowest ``id`` as dicts (column -> value), for templates."""
    a = source_tables().attempts
    cols = [read_column(c) for c in a.columns]  # our names, whatever the product's
    return [dict(r) for r in conn.execute(select(*cols).order_by(a.c.id).limit(n)).mappings().all()]


def append(conn: Connection, frame: pl.DataFrame) -> int:
    """Append raw rows (``attempts`` columns, missing nullable ones allowed) in the caller's
    transaction; returns the count."""
    return insert_frame(conn, s.attempts, frame)
