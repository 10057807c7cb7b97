"""The owner of ``topics`` (and, with :mod:`.attempts`' lookups, ``items``): topic names."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, select

from seedtest_assets.core.source.relations import read_column, source_tables
from seedtest_assets.core.warehouse import read_frame


def read_topic_names(conn: Connection) -> pl.DataFrame:
    """Every topic: ``topic_id, name`` (Korean label), ``name_en`` (may be null)."""
    t = source_tables().topics
    return read_frame(conn, select(*(read_column(t.c[c]) for c in ("topic_id", "name", "name_en"))))
