"""The laptop instance's event log: Dagster's SQLite storage, with batches written in bulk.

A weekly batch records one materialization per student (``student_events``) through Dagster's
batched event path. On PostgreSQL that is one multi-row insert per 1,000 events (0.65 ms per
event); Dagster's SQLite storage has no batch write and stores each event alone: a new engine
and transaction for the run's file, another for the index file (asset tags, the asset's
latest-materialization row): 10.4-15.2 ms per event, 17-25 min for 100k students. This
class: 0.54 ms (``benchmarks/events.py``, 100k students; PostgreSQL 0.74 ms).

:class:`BatchedSqliteEventLogStorage` writes a batch of asset materializations in one
transaction per file, with the same rows Dagster writes event by event (the inherited helpers;
dagster is pinned and ``seedtest_assets_tests/defs/test_event_storage.py`` compares the stored
rows with the stock class's). Every other event, and any batch holding one, goes through the
stock per-event path. The repository's ``dagster.yaml`` selects it; an instance without it
works, only slower.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from dagster import DagsterEventType, Field
from dagster._config import StringSource
from dagster._core.event_api import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData

from seedtest_assets.core import settings


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps the run event logs:
    ``$DAGSTER_HOME/history/runs``. Without ``DAGSTER_HOME`` the instance is a temporary one
    (``dg check defs`` loads the repository's ``dagster.yaml`` into a scratch instance): a
    fresh temporary folder, as Dagster's own temporary instances use."""
    home = settings.env("DAGSTER_HOME")
    if not home:
        return tempfile.mkdtemp(prefix="seedtest-dagster-events-")
    return os.path.join(home, "history", "runs")


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` whose ``store_event_batch`` writes a batch of asset
    materializations of one run in one transaction on the run file and one on the index file.

    ``base_dir`` defaults to ``$DAGSTER_HOME/history/runs``, where the stock storage keeps them,
    so an instance can switch to this class and back without losing history.
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

    @classmethod
    def config_type(cls) -> Any:
        return {"base_dir": Field(StringSource, is_required=False)}  # see default_base_dir

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store ``events``; a batch of one run's asset materializations in two transactions."""
        if not _bulk_writable(events):
            for event in events:
                self.store_event(event)
            return
        rows = [self._event_to_row(e) for e in events]  # each event serialized once
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # The index file gets the same rows (the stock store_event mirrors asset events there
        # one at a time), their tags, and each asset's latest-materialization row. The run
        # file's rows are committed: if the bulk index write fails (rolled back), index them
        # one by one rather than raise, which would make Dagster store the batch again.
        try:
            with self.index_transaction() as conn:
                self._index(conn, events, rows)
        except Exception:
            for event, row in zip(events, rows, strict=True):
                with self.index_transaction() as conn:
                    self._index(conn, [event], [row])

    def _index(self, conn: Any, events: Sequence[EventLogEntry], rows: list[dict]) -> None:
        insert = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        ids = [r[0] for r in conn.execute(insert, rows)]
        if len(ids) != len(events):
            raise RuntimeError(f"{len(ids)} ids returned for {len(events)} events")
        self._store_asset_event_tags(conn, events, ids)
        # The asset's row holds only its latest event: writing it for each event in order
        # (as the stock storage does) leaves the values of the last one.
        latest = {row["asset_key"]: (e, i) for e, i, row in zip(events, ids, rows, strict=True)}
        for event, event_id in latest.values():
            self._store_asset_event(conn, event, event_id)


def _bulk_writable(events: Sequence[EventLogEntry]) -> bool:
    """Whether every event is an asset materialization of one run (the per-student batches)."""
    if not events:
        return False
    run_id = events[0].run_id
    return all(
        e.run_id == run_id
        and e.is_dagster_event
        and e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
        and e.get_dagster_event().asset_key is not None
        for e in events
    )
