"""The owner of ``topics`` (and, with :mod:`.attempts`' lookups, ``items``): topic names."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, select

from seedtest_assets.core.warehouse import read_frame
from seedtest_assets.core.warehouse import schema as s


def read_topic_names(conn: Connection) -> pl.DataFrame:
    """Every topic: ``topic_id, name`` (Korean label), ``name_en`` (may be null)."""
    t = s.topics
    return read_frame(conn, select(t.c.topic_id, t.c.name, t.c.name_en))
