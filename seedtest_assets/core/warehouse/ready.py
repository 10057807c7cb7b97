"""Is the warehouse there and migrated? Checked before reading it, without creating anything.

A command that only reads (or appends rows to) an existing warehouse must not create one as a
side effect: SQLite creates a missing file on the first connection, so :func:`ready_engine`
looks for the file first, then compares the Alembic revision with this code's head. Problems
become :class:`WarehouseNotReady` with one line saying what is wrong, where (the file path or
the URL with its password masked) and how to fix it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from seedtest_assets.core import settings
from seedtest_assets.core.settings import scrub
from seedtest_assets.core.warehouse.db import alembic_config, make_engine

#: How to point the commands at another warehouse (part of every message).
SETTINGS_HINT = "set SEEDTEST_HOME / DATABASE_URL to the warehouse you mean"


class WarehouseNotReady(Exception):
    """The warehouse is missing, not migrated, at another revision, or unreachable.

    ``str(exc)`` is one line for the user (no password in it).
    """


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None: not SQLite, or in memory)."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL at all: certainly not a SQLite file
        return None
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


def describe(url: str) -> str:
    """Where the warehouse is, for messages: the SQLite file, else the URL without password."""
    path = sqlite_file(url)
    return f"SQLite file {path}" if path else settings.redact_url(url)


def one_line(exc: BaseException, url: str | None = None) -> str:
    """A driver error as one line: the DBAPI message without SQL or background links, and
    without any credential of the URL (password, ``?password=``, ``PGPASSWORD``) even if a
    driver echoed it."""
    err = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(err).split()) or type(err).__name__
    return scrub(text, url)


def _scripts():
    """The migrations this code ships (Alembic's script directory)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str:
    """The newest migration this code ships."""
    return _scripts().get_current_head() or ""


def _probe_engine(url: str) -> Engine:
    """An engine that cannot change anything: SQLite opened read-only (no journal-mode
    switch, no file created), other databases without a pool."""
    path = sqlite_file(url)
    if path is not None:
        return create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true")
    return create_engine(url, poolclass=NullPool)


def check_revision(url: str) -> None:
    """Raise :class:`WarehouseNotReady` unless the warehouse is at this code's head revision
    (read-only: the check itself writes nothing)."""
    from alembic.runtime.migration import MigrationContext

    where = describe(url)
    engine = _probe_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        if sqlite_file(url) is not None:  # e.g. not a database file at all
            raise WarehouseNotReady(
                f"cannot read the warehouse {where}: {one_line(exc, url)}; {SETTINGS_HINT}"
            ) from exc
        raise WarehouseNotReady(
            f"cannot connect to the warehouse {where}: {one_line(exc, url)}; check "
            "DATABASE_URL and that the server is running"
        ) from exc
    finally:
        engine.dispose()
    scripts = _scripts()
    head = scripts.get_current_head()
    if current == head:
        return
    if current is None:
        raise WarehouseNotReady(
            f"the warehouse {where} has no seedtest tables (not migrated): run "
            f"`seedtest db upgrade` to create them, or {SETTINGS_HINT}"
        )
    if current not in {rev.revision for rev in scripts.walk_revisions()}:
        raise WarehouseNotReady(
            f"the warehouse {where} is at revision {current}, which this seedtest does not "
            f"know (it ships up to {head}): upgrade seedtest, or {SETTINGS_HINT}"
        )
    raise WarehouseNotReady(
        f"the warehouse {where} is at revision {current}, this seedtest needs {head}: run "
        f"`seedtest db upgrade`, or {SETTINGS_HINT}"
    )


def ready_engine(url: str) -> Engine:
    """An engine on an existing warehouse at the head revision; creates no file or folder.

    Raises:
        WarehouseNotReady: the SQLite file is missing, the schema is not migrated or at
            another revision, or the server cannot be reached.
    """
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise WarehouseNotReady(
            f"no warehouse at {path} (SQLite file missing): run `seedtest db upgrade` to "
            f"create it (and `seedtest generate` for demo data), or {SETTINGS_HINT}"
        )
    check_revision(url)
    return make_engine(url)
