"""The warehouse: table definitions, migrations, and frame I/O (no Dagster here)."""

from seedtest_assets.core.warehouse import schema
from seedtest_assets.core.warehouse.db import (
    downgrade,
    insert_frame,
    is_postgres,
    make_engine,
    read_frame,
    read_frames,
    replace_rows,
    transaction,
    upgrade,
)

__all__ = [
    "downgrade",
    "insert_frame",
    "is_postgres",
    "make_engine",
    "read_frame",
    "read_frames",
    "replace_rows",
    "schema",
    "transaction",
    "upgrade",
]
