"""The migration runner: upgrade or downgrade the warehouse in one transaction, one at a time.

- **One transaction.** The whole command (every revision it passes) runs in one transaction,
  with the Alembic version row: a failure, or a refusal, leaves the database exactly as it
  was. PostgreSQL has transactional DDL; on SQLite the driver's own transaction handling
  (which commits DDL as it goes, and so left half-rebuilt tables behind) is replaced by an
  explicit ``BEGIN IMMEDIATE``, which makes SQLite's DDL transactional too.
- **One at a time.** PostgreSQL: a transaction-level advisory lock
  (``pg_advisory_xact_lock(MIGRATION_LOCK_KEY)``, released at commit or rollback) serializes
  concurrent ``seedtest db upgrade`` runs on one database: the second waits, then finds the
  schema at head and does nothing. SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock,
  so the second waits (busy timeout 60 s) the same way.
- **No silent loss.** A downgrade that would drop a table or column holding data refuses
  (:class:`MigrationRefused`, naming each table / column and how many values it holds)
  unless ``allow_data_loss`` is set: see :func:`refuse_data_loss`, called by those
  migrations' ``downgrade()``.
- **Leftovers.** A table ``_alembic_tmp_<name>`` is what a SQLite batch rebuild leaves when
  it failed before this runner was transactional. Next to an intact ``<name>`` it is only a
  partial copy: it is dropped in the same transaction (and said so). Without ``<name>`` its
  rows may be the only copy: the runner refuses and says how to restore it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool

from seedtest_assets.core import settings
from seedtest_assets.core.warehouse.db import set_wal

#: The advisory lock key of "seedtest migrations" (ASCII "seedtMIG" as a signed 64-bit
#: integer): ``SELECT pg_advisory_xact_lock(8315163769131845959)``; see docs/operations.md.
MIGRATION_LOCK_KEY = int.from_bytes(b"seedtMIG", "big")
#: The prefix of the temporary tables of Alembic's SQLite batch mode.
BATCH_TMP_PREFIX = "_alembic_tmp_"


class MigrationRefused(Exception):
    """The migration would lose data or cannot run safely. ``str(exc)``: one line saying
    what, where and what to do; nothing was changed."""


@dataclass
class MigrationResult:
    """Where the warehouse was and is, and what the runner did besides migrating."""

    before: str
    after: str
    notes: list[str] = field(default_factory=list)


def _migration_engine(url: str) -> Engine:
    """An engine for one migration run: no pool; SQLite with transactional DDL."""
    url = settings.normalize_database_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        set_wal(cur)
        cur.close()
        # The driver would BEGIN only before DML and so commit each DDL statement on its
        # own: take transactions over (SQLAlchemy's documented recipe).
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _lock(conn: Connection, where: str, on_wait: Callable[[str], None] | None) -> None:
    """PostgreSQL: wait for (and hold until the transaction ends) the migration lock."""
    if conn.dialect.name != "postgresql":
        return
    key = {"k": MIGRATION_LOCK_KEY}
    if conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), key).scalar_one():
        return
    if on_wait is not None:
        on_wait(
            f"another seedtest migration of {where} is running (PostgreSQL advisory lock "
            f"{MIGRATION_LOCK_KEY}); waiting for it to finish"
        )
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), key)


def _clear_batch_leftovers(conn: Connection, where: str) -> list[str]:
    """Drop ``_alembic_tmp_<name>`` tables next to an intact ``<name>``; refuse otherwise."""
    names = set(inspect(conn).get_table_names())
    notes = []
    for tmp in sorted(n for n in names if n.startswith(BATCH_TMP_PREFIX)):
        base = tmp[len(BATCH_TMP_PREFIX) :]
        if base not in names:
            raise MigrationRefused(
                f"the warehouse {where} has {tmp} but no {base}: an earlier migration failed "
                f"while rebuilding {base}, and {tmp} may hold its only copy; nothing was "
                f"changed. Restore {base} from a backup, or rename the copy back (ALTER TABLE "
                f"{tmp} RENAME TO {base}) after checking it, then run the command again"
            )
        conn.execute(text(f'DROP TABLE "{tmp}"'))  # a name we just read from the catalog
        notes.append(
            f"removed {tmp}, left by an earlier failed migration ({base} itself is intact)"
        )
    return notes


def current_revision(conn: Connection) -> str:
    """The Alembic revision of the database on ``conn`` ("" when not migrated)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision() or ""


def migrate(
    url: str,
    revision: str = "head",
    *,
    downgrade: bool = False,
    allow_data_loss: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> MigrationResult:
    """Upgrade (or downgrade) the warehouse at ``url`` to ``revision``, in one transaction
    under the migration lock.

    Raises:
        MigrationRefused: a downgrade would drop data (and ``allow_data_loss`` is not set),
            or an earlier failure left a table that cannot be cleaned up safely.
        alembic.util.CommandError: ``revision`` does not exist or is not in that direction.
    """
    from alembic import command

    from seedtest_assets.core.warehouse.db import alembic_config
    from seedtest_assets.core.warehouse.ready import describe

    url = settings.normalize_database_url(url)
    where = describe(url)
    engine = _migration_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            _lock(conn, where, on_wait)
            before = current_revision(conn)
            if downgrade and not before:
                from seedtest_assets.core.warehouse.ready import SETTINGS_HINT, WarehouseNotReady

                raise WarehouseNotReady(
                    f"the warehouse {where} has no seedtest tables (not migrated): nothing to "
                    f"downgrade; {SETTINGS_HINT}"
                )
            notes = _clear_batch_leftovers(conn, where)
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            cfg.attributes["allow_data_loss"] = allow_data_loss
            cfg.attributes["where"] = where
            (command.downgrade if downgrade else command.upgrade)(cfg, revision)
            after = current_revision(conn)
    finally:
        engine.dispose()
    return MigrationResult(before=before, after=after, notes=notes)


def refuse_data_loss(
    revision: str,
    *,
    columns: Mapping[str, Sequence[str]] | None = None,
    tables: Sequence[str] = (),
) -> None:
    """In a migration's ``downgrade()``: refuse when the ``columns`` (table -> names) or
    ``tables`` it is about to drop hold any value, unless the run allows data loss.

    The message names each table / column with its count of non-null values (rows for a
    table) and what to do; the runner's transaction rolls everything back.
    """
    from alembic import op

    cfg = op.get_context().config
    attributes = cfg.attributes if cfg is not None else {}
    if attributes.get("allow_data_loss"):
        return
    bind = op.get_bind()
    held: list[str] = []
    # Table and column names are the migration's own constants, never user input.
    for table, names in (columns or {}).items():
        counts = bind.execute(
            text(f"SELECT {', '.join(f'count({c})' for c in names)} FROM {table}")
        ).one()
        held += [f"{table}.{c} ({n:,} values)" for c, n in zip(names, counts, strict=True) if n]
    for table in tables:
        n = bind.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        if n:
            held.append(f"{table} ({n:,} rows)")
    if not held:
        return
    where = attributes.get("where", "the warehouse")
    raise MigrationRefused(
        f"refusing to downgrade the warehouse {where} below revision {revision}: that drops "
        f"{'; '.join(held)}, and the data would be lost (upgrading again brings them back "
        f"empty); nothing was changed. Stay at revision {revision}, or back the data up "
        "(pg_dump / sqlite3 .backup) and run again with --allow-data-loss"
    )
