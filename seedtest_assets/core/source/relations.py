"""Where the source relations live: our own tables (default) or the exam product's.

The platform reads six source relations: ``attempts``, ``users``, ``items``, ``topics``,
``exam_sessions`` and ``organizations``. By default they are our own tables of
:mod:`seedtest_assets.core.warehouse.schema` (what the synthetic generator and the demo
write). In production they are the product's own relations, e.g. its ``public.attempt``
view, with its own column names; the environment says where (:data:`ENV`):

- ``SOURCE_ATTEMPTS=public.attempt`` (``name`` or ``schema.name``), likewise
  ``SOURCE_USERS``, ``SOURCE_ITEMS``, ``SOURCE_TOPICS``, ``SOURCE_SESSIONS``,
  ``SOURCE_ORGANIZATIONS``;
- ``SOURCE_ATTEMPTS_COLUMNS="user_id=student_id,attempted_at=answered_at"``: comma-separated
  ``our_column=product_column`` pairs; an unlisted column keeps our name. Likewise
  ``SOURCE_USERS_COLUMNS`` and so on.

Every name is checked against :data:`IDENTIFIER` (per dotted part) and then only ever handed
to SQLAlchemy as an identifier, quoted (``quote=True``): no user text is formatted into SQL.
Names are case-sensitive, as the catalog stores them (PostgreSQL: lower case unless the
product created them quoted).

:func:`source_tables` builds SQLAlchemy ``Table`` objects whose column *keys* are our names
and whose SQL names are the product's (``Column("student_id", Text, key="user_id")``), in a
``MetaData`` of their own (never the warehouse's, so Alembic never sees them): the readers of
this package keep writing ``t.c.user_id``. A relation left at its default *is* our table of
``schema.py`` (the embedded demo's SQL is unchanged).

The product may keep integer ids; readers cast id columns to text in the SELECT list only
(:func:`read_column`), never in join or where conditions, where a cast would stop the
database using the product's indexes. Joins therefore compare the product's own types, which
must agree between its relations (they do when its foreign keys hold).

:func:`check_source` is the start check: every configured relation exists (table or view)
and has every column we read.

Source and warehouse are one database (one ``DATABASE_URL``); the relations may live in
another schema of it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import (
    Column,
    ColumnElement,
    Dialect,
    Engine,
    MetaData,
    Table,
    Text,
    cast,
    inspect,
    text,
)
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

from seedtest_assets.core import settings
from seedtest_assets.core.warehouse import schema as s

#: One part of a relation or column name: letters, digits, ``_`` and ``$``, not starting with
#: a digit (what PostgreSQL accepts unquoted; anything else is refused, not escaped).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

#: Our source tables, keyed by our name, in the order they are described.
OURS: dict[str, Table] = {
    "attempts": s.attempts,
    "users": s.users,
    "items": s.items,
    "topics": s.topics,
    "exam_sessions": s.exam_sessions,
    "organizations": s.organizations,
}

#: Our table -> the variable naming its relation (its column mapping: the same + ``_COLUMNS``).
ENV: dict[str, str] = {
    "attempts": "SOURCE_ATTEMPTS",
    "users": "SOURCE_USERS",
    "items": "SOURCE_ITEMS",
    "topics": "SOURCE_TOPICS",
    "exam_sessions": "SOURCE_SESSIONS",
    "organizations": "SOURCE_ORGANIZATIONS",
}

#: Columns the readers of this package never read (not required by :func:`check_source`).
UNREAD: dict[str, frozenset[str]] = {"exam_sessions": frozenset({"started_at"})}

#: The id columns (text in our tables since migration 0008; maybe integers in the product's).
ID_COLUMNS = frozenset({"user_id", "org_id", "session_id", "item_id", "topic_id"})


class ProductIdent(TypeDecorator):
    """The type of a product relation's id column: text to us, whatever it is in the product.

    Our filters bind ids as Python strings (``user_id IN ('123', …)``). SQLAlchemy's
    PostgreSQL dialect would render them ``'123'::VARCHAR``, which an integer column cannot
    be compared with (``bigint = character varying``). Untyped on PostgreSQL, psycopg sends
    them as ``unknown``, and the server reads them as the column's own type: text ids compare
    as text, integer ids as integers, with the product's indexes. Elsewhere (SQLite): text.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        return NullType() if dialect.name == "postgresql" else Text()


class SourceConfigError(settings.SettingsError):
    """A ``SOURCE_*`` variable cannot be used as given (one line: which, and why)."""


class SourceNotReady(Exception):
    """A configured source relation is missing, or lacks columns we read (one line naming
    the relation, the missing columns and the variable to fix)."""


def _identifier(value: str, what: str, variable: str) -> str:
    if not IDENTIFIER.match(value):
        raise SourceConfigError(
            f"{variable}: {what} {value!r} is not an identifier (letters, digits, _ and $, "
            "not starting with a digit)"
        )
    return value


@dataclass(frozen=True)
class Relation:
    """Where one of our source tables lives in the product.

    Attributes:
        table: our table's name (``attempts``).
        name: the product's relation (table or view), unqualified (``attempt``).
        schema: its schema (``public``), or None for the connection's search path.
        columns: ``(our column, product column)`` for every column of our table, in our
            table's order (identity where not mapped).
    """

    table: str
    name: str
    schema: str | None
    columns: tuple[tuple[str, str], ...]

    @property
    def qualified(self) -> str:
        """``schema.name`` (or ``name``), as configured."""
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @property
    def variable(self) -> str:
        """The variable naming this relation (``SOURCE_ATTEMPTS``)."""
        return ENV[self.table]

    @property
    def mapping(self) -> dict[str, str]:
        """Our column -> the product's, for the renamed columns only."""
        return {ours: theirs for ours, theirs in self.columns if ours != theirs}

    @property
    def is_default(self) -> bool:
        """Our own table, unrenamed: read through ``schema.py``'s ``Table`` itself."""
        return self.name == self.table and self.schema is None and not self.mapping

    def read_columns(self) -> list[tuple[str, str]]:
        """``(ours, product)`` of the columns the readers read (what the start check needs)."""
        skip = UNREAD.get(self.table, frozenset())
        return [(o, p) for o, p in self.columns if o not in skip]

    def describe(self) -> str:
        """``attempts <- exam.attempt (user_id=student_id, ...)`` for logs and the CLI."""
        renamed = ", ".join(f"{o}={p}" for o, p in self.mapping.items())
        return f"{self.table} <- {self.qualified}" + (f" ({renamed})" if renamed else "")


def parse_relation(table: str, raw: str) -> tuple[str, str | None]:
    """``SOURCE_<X>``'s value as ``(name, schema)``; empty = our table in the search path.

    Raises:
        SourceConfigError: more than one dot, or a part that is not an :data:`IDENTIFIER`.
    """
    variable = ENV[table]
    if not raw:
        return table, None
    parts = raw.split(".")
    if len(parts) > 2:
        raise SourceConfigError(f"{variable}={raw!r}: expected name or schema.name")
    for part in parts:
        _identifier(part, "relation part", variable)
    return (parts[1], parts[0]) if len(parts) == 2 else (parts[0], None)


def parse_columns(table: str, raw: str) -> tuple[tuple[str, str], ...]:
    """``SOURCE_<X>_COLUMNS``'s value (``ours=theirs,ours=theirs``) applied to every column
    of our ``table``: ``(ours, product)`` pairs in our table's order.

    Raises:
        SourceConfigError: an entry without exactly one ``=``, a name that is not an
            :data:`IDENTIFIER`, a column we do not have, a column mapped twice, or two of our
            columns landing on one product column.
    """
    variable = f"{ENV[table]}_COLUMNS"
    ours = [c.name for c in OURS[table].columns]
    mapped: dict[str, str] = {}
    for entry in (e.strip() for e in raw.split(",")) if raw else ():
        if not entry:
            continue  # a trailing comma
        if entry.count("=") != 1:
            raise SourceConfigError(f"{variable}: entry {entry!r} is not our_column=product_column")
        left, right = (x.strip() for x in entry.split("="))
        _identifier(left, "column", variable)
        _identifier(right, "column", variable)
        if left not in ours:
            raise SourceConfigError(
                f"{variable}: {left!r} is not a column of {table} (its columns: {', '.join(ours)})"
            )
        if left in mapped:
            raise SourceConfigError(f"{variable}: {left!r} is mapped twice")
        mapped[left] = right
    pairs = tuple((c, mapped.get(c, c)) for c in ours)
    seen: dict[str, str] = {}
    for o, p in pairs:
        if p in seen:
            raise SourceConfigError(
                f"{variable}: {seen[p]} and {o} would both read the product column {p!r}"
            )
        seen[p] = o
    return pairs


@dataclass(frozen=True)
class SourceRelations:
    """Where all six source relations live (defaults: our own tables, identity mapping)."""

    relations: tuple[Relation, ...] = field(
        default_factory=lambda: tuple(
            Relation(t, t, None, tuple((c.name, c.name) for c in OURS[t].columns)) for t in OURS
        )
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SourceRelations:
        """From ``SOURCE_*`` (``environ`` replaces ``os.environ``; tests).

        Raises:
            SourceConfigError: a malformed name or mapping (see :func:`parse_relation`,
                :func:`parse_columns`).
        """
        out = []
        for table, variable in ENV.items():
            name, schema = parse_relation(table, settings.env(variable, environ))
            columns = parse_columns(table, settings.env(f"{variable}_COLUMNS", environ))
            out.append(Relation(table, name, schema, columns))
        return cls(tuple(out))

    def __getitem__(self, table: str) -> Relation:
        for r in self.relations:
            if r.table == table:
                return r
        raise KeyError(table)

    @property
    def is_default(self) -> bool:
        """Every relation is our own table."""
        return all(r.is_default for r in self.relations)

    def tables(self) -> SourceTables:
        """The ``Table`` objects to read through (a fresh ``MetaData`` for the product's)."""
        md = MetaData()
        built: dict[str, Table] = {}
        for r in self.relations:
            ours = OURS[r.table]
            if r.is_default:
                built[r.table] = ours
                continue
            product = dict(r.columns)
            built[r.table] = Table(
                r.name,
                md,
                # Types are ours: what the readers bind and frames carry (ids cast to text
                # when read, see read_column; bound untyped, see ProductIdent). No keys or
                # indexes: we never create these.
                *[
                    Column(
                        product[c.name],
                        ProductIdent() if c.name in ID_COLUMNS else c.type,
                        key=c.name,
                        quote=True,
                    )
                    for c in ours.columns
                ],
                schema=r.schema,
                quote=True,
                quote_schema=True if r.schema else None,
            )
        return SourceTables(relations=self, **built)


@dataclass(frozen=True)
class SourceTables:
    """The source relations as SQLAlchemy tables (column keys: our names)."""

    relations: SourceRelations
    attempts: Table
    users: Table
    items: Table
    topics: Table
    exam_sessions: Table
    organizations: Table


@functools.cache
def source_tables() -> SourceTables:
    """The configured source tables, resolved from the environment once per process.

    Raises:
        SourceConfigError: a malformed ``SOURCE_*`` variable.
    """
    return SourceRelations.from_env().tables()


def clear_source_cache() -> None:
    """Forget :func:`source_tables` (tests that change ``SOURCE_*``)."""
    source_tables.cache_clear()


def _is_ours(column: ColumnElement) -> bool:
    table = getattr(column, "table", None)
    return getattr(table, "metadata", None) is s.metadata


def read_column(column: Column, label: str | None = None) -> ColumnElement:
    """``column`` for a reader's SELECT list, named by our key (or ``label``).

    An id column of a product relation is cast to text (the product may keep integers; our
    frames carry text ids), here and only here: joins and filters compare the product's own
    columns so its indexes serve them. Our own tables' ids are text already (migration 0008):
    their SQL stays as it was.
    """
    name = label or column.key
    if _is_ours(column):
        return column.label(label) if label else column
    if column.key in ID_COLUMNS:
        return cast(column, Text()).label(name)
    return column.label(name)


#: Every relation named, with its columns, on PostgreSQL in one catalog query (the
#: inspector's per-relation queries took 93 ms, paid by every sensor tick). A relation kind
#: we can read: table, view, materialized view, partitioned or foreign table. An unqualified
#: name resolves through the search path, as the readers' queries do (pg_table_is_visible).
_PG_COLUMNS = text(
    """
    SELECT n.nspname, c.relname, pg_table_is_visible(c.oid) AS visible, a.attname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND c.relname = ANY(:names)
    """
)


def _pg_columns(
    engine: Engine, relations: SourceRelations
) -> dict[tuple[str | None, str], set[str]]:
    """``(schema as configured, name) -> column names`` of the relations that exist."""
    names = sorted({r.name for r in relations.relations})
    with engine.connect() as conn:
        rows = conn.execute(_PG_COLUMNS, {"names": names}).all()
    out: dict[tuple[str | None, str], set[str]] = {}
    for r in relations.relations:
        found = [
            col
            for schema, name, visible, col in rows
            if name == r.name and (schema == r.schema if r.schema else visible)
        ]
        if found:
            out[(r.schema, r.name)] = {c for c in found if c is not None}
    return out


def _inspected_columns(
    engine: Engine, relations: SourceRelations
) -> dict[tuple[str | None, str], set[str]]:
    """:func:`_pg_columns` through SQLAlchemy's inspector (SQLite: tables and views)."""
    insp = inspect(engine)
    out: dict[tuple[str | None, str], set[str]] = {}
    names_by_schema: dict[str | None, set[str]] = {}
    for r in relations.relations:
        if r.schema not in names_by_schema:
            names_by_schema[r.schema] = set(insp.get_table_names(schema=r.schema)) | set(
                insp.get_view_names(schema=r.schema)
            )
        if r.name in names_by_schema[r.schema]:
            out[(r.schema, r.name)] = {c["name"] for c in insp.get_columns(r.name, schema=r.schema)}
    return out


def check_source(engine: Engine, relations: SourceRelations | None = None) -> None:
    """The start check: every relation exists (table, view or materialized view) and has
    every column we read.

    Args:
        engine: the database holding them (the warehouse's).
        relations: what to check (default: :func:`source_tables`'s, from the environment).

    Raises:
        SourceNotReady: one line naming each missing relation, or each relation's missing
            product columns (with ours) and the variable to fix.
    """
    relations = relations or source_tables().relations
    columns = (
        _pg_columns(engine, relations)
        if engine.dialect.name == "postgresql"
        else _inspected_columns(engine, relations)
    )
    problems: list[str] = []
    for r in relations.relations:
        have = columns.get((r.schema, r.name))
        if have is None:
            problems.append(
                f"source relation {r.qualified} ({r.table}) does not exist: set {r.variable}"
            )
            continue
        missing = [(o, p) for o, p in r.read_columns() if p not in have]
        if missing:
            listed = ", ".join(p if o == p else f"{p} (our {o})" for o, p in missing)
            problems.append(
                f"source relation {r.qualified} ({r.table}) has no column {listed}: set "
                f"{r.variable}_COLUMNS"
            )
    if problems:
        raise SourceNotReady("; ".join(problems))
