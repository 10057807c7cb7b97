"""Dagster resources: the warehouse (and, in later issues, the report store).

Configured from the environment with embedded defaults: with nothing set, the warehouse is the
SQLite file under ``SEEDTEST_HOME``. Secrets stay in ``EnvVar`` references, so the UI shows the
variable's name, never its value.
"""

import os

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from seedtest_assets import settings
from seedtest_assets.warehouse import make_engine


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (SQLAlchemy engine), PostgreSQL or the embedded SQLite file.

    Attributes:
        database_url: a SQLAlchemy URL; empty -> ``sqlite:///$SEEDTEST_HOME/warehouse.db``.
    """

    database_url: str = ""
    _engine: Engine | None = PrivateAttr(default=None)

    def url(self) -> str:
        """The effective URL (normalized; may contain a password: never log it)."""
        return (
            settings.normalize_database_url(self.database_url)
            if self.database_url
            else settings.default_database_url()
        )

    def display_url(self) -> str:
        """The URL with its password masked, for logs and metadata."""
        return settings.redact_url(self.url())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = make_engine(self.url())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        """The engine for this run (created lazily outside a run, e.g. in sensors)."""
        if self._engine is None:
            self._engine = make_engine(self.url())
        return self._engine


def warehouse_from_env() -> WarehouseResource:
    """``DATABASE_URL`` through ``EnvVar`` when set, else the embedded SQLite default."""
    if os.environ.get("DATABASE_URL"):
        return WarehouseResource(database_url=dg.EnvVar("DATABASE_URL"))
    return WarehouseResource()
