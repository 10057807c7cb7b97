"""Each accepted θ update as the student's ``student/mirt_ability`` materialization in Dagster.

A runless materialization (what the public ``DagsterInstance.report_runless_asset_event``
records, written in batches: see :func:`_report`) belongs to no run; the UI shows it on the
student's partition like the sensor's re-scores.
Events are written in the background so that an answer never waits for Dagster's storage
(~1 ms per event on PostgreSQL), in batches of what arrives within
``linger_seconds`` of a batch's first event: each write opens a new connection to a PostgreSQL
instance (dagster-postgres pools none), and writing whatever was queued (a few events) cost
a third of a loaded worker's time, most of it connecting (py-spy, 2026-12-07).

The service's writer (``DagsterEvents()``, the instance of ``DAGSTER_HOME``) is a process of
its own per worker, fed by a queue: Dagster spends ~0.6 ms of Python per event, which in a
thread held the worker's GIL from its requests (32 clients: 274 updates/s and p99 297 ms
with the thread, 334/s and 232 ms with no events at all; docs/benchmarks.md). It stops when
its worker is gone, however the worker ended. A writer given an instance object (tests) is a
thread. The warehouse row is the record: an event
still queued when the process is killed is lost, the row is not (the sensor's next re-score or
the weekly batch records the student again). Students not yet registered as ``users``
partitions are added first, in one call per batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg

from seedtest_assets.core import settings
from seedtest_assets.defs.mirt_ability.assets import STUDENT_ABILITY
from seedtest_assets.defs.partitions import user_partition_key, users
from seedtest_assets.defs.student_events import EVENT_BATCH_SIZE

_log = logging.getLogger("seedtest.api")


class DagsterEvents:
    """A background writer of ``student/mirt_ability`` materializations: to ``instance``
    (a thread), or, when none is given, to the instance of ``DAGSTER_HOME`` (a process).

    Counters (``recorded``, ``failed``, ``writes``: storage writes; ``path``: see
    :func:`_report`) are a process writer's once :meth:`stop` returns."""

    def __init__(
        self,
        instance: dg.DagsterInstance | None = None,
        max_batch: int = 500,
        linger_seconds: float = 0.5,
    ):
        self._instance = instance
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._own_process = instance is None
        self._queue: Any = None
        self._results: Any = None
        self._worker: threading.Thread | multiprocessing.process.BaseProcess | None = None
        self._writer: _Writer | None = None
        self._dead_logged = False
        self.recorded = 0
        self.failed = 0
        self.writes = 0
        self.path = "none"

    def start(self) -> None:
        if self._own_process:
            ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no copied locks
            self._queue, self._results = ctx.Queue(), ctx.Queue()
            self._worker = ctx.Process(
                target=_writer_process,
                args=(self._queue, self._results, self._max_batch, self._linger),
                name="dagster-events",
                daemon=True,
            )
        else:
            assert self._instance is not None
            self._queue = queue.Queue()
            self._writer = _Writer(self._instance, self._max_batch, self._linger)
            self._worker = threading.Thread(
                target=self._writer.run, args=(self._queue,), name="dagster-events", daemon=True
            )
        self._worker.start()

    def submit(self, metadata_by_user: Mapping[str, dict[str, object]]) -> None:
        """Queue one materialization per student (returns at once)."""
        worker = self._worker
        if isinstance(worker, multiprocessing.process.BaseProcess) and not worker.is_alive():
            self.failed += len(metadata_by_user)
            if not self._dead_logged:  # once: the answers and rows are unaffected
                _log.error("the Dagster events writer exited (%s)", worker.exitcode)
                self._dead_logged = True
            return
        for user_id, metadata in metadata_by_user.items():
            self._queue.put((user_id, metadata))

    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued (up to ``timeout`` seconds), then stop."""
        worker = self._worker
        if worker is None:
            return
        self._queue.put(None)
        worker.join(timeout)
        self._worker = None
        if self._writer is not None:
            self.recorded, self.failed, self.writes, self.path = self._writer.counters()
            return
        try:
            recorded, failed, writes, path = self._results.get(timeout=1.0)
        except queue.Empty:  # killed or still writing: its counters are lost
            _log.warning("the Dagster events writer did not report before stopping")
            if worker.is_alive():  # type: ignore[union-attr]
                worker.terminate()  # type: ignore[union-attr]
            return
        # self.failed so far: events refused by submit() after the writer died.
        self.recorded, self.failed, self.writes, self.path = (
            recorded,
            self.failed + failed,
            writes,
            path,
        )


def _writer_process(events: Any, results: Any, max_batch: int, linger: float) -> None:
    """The process writer's main: write until ``None`` arrives, then report the counters."""
    parent = multiprocessing.parent_process()

    def watch() -> None:  # a worker killed outright never sends None: stop once it is gone
        while parent is None or parent.is_alive():
            time.sleep(1.0)
        events.put(None)

    threading.Thread(target=watch, name="worker-watch", daemon=True).start()
    writer = _Writer(dg.DagsterInstance.get(), max_batch, linger)
    try:
        writer.run(events)
    finally:
        results.put(writer.counters())
        writer.instance.dispose()


class _Writer:
    """Takes batches off a queue (what arrives within ``linger`` seconds of a batch's first
    event, at most ``max_batch``) and records them; ``None`` stops it."""

    def __init__(self, instance: dg.DagsterInstance, max_batch: int, linger: float):
        self.instance, self._max_batch, self._linger = instance, max_batch, linger
        self._known: set[str] | None = None
        self.recorded = 0
        self.failed = 0
        self.writes = 0
        self.path = "none"

    def counters(self) -> tuple[int, int, int, str]:
        """(recorded, failed, writes, path)."""
        return self.recorded, self.failed, self.writes, self.path

    def run(self, events: Any) -> None:
        stop = False
        while not stop:
            item = events.get()
            batch: list[tuple[str, dict[str, object]]] = []
            deadline = time.monotonic() + self._linger
            while True:
                if item is None:  # stop(): write what is here now, no lingering
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                wait = deadline - time.monotonic()
                try:
                    item = events.get(timeout=wait) if wait > 0 else events.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[str, dict[str, object]]]) -> None:
        try:
            keys = {u: user_partition_key(u) for u, _ in batch}
            if self._known is None:
                self._known = set(self.instance.get_dynamic_partitions(users.name))
            missing = sorted({k for k in keys.values() if k not in self._known})
            if missing:
                self.instance.add_dynamic_partitions(users.name, missing)
                self._known.update(missing)
            mats = [
                dg.AssetMaterialization(
                    asset_key=STUDENT_ABILITY, partition=keys[user_id], metadata=metadata
                )
                for user_id, metadata in batch
            ]
            self.path = _report(self.instance, mats)
            self.recorded += len(mats)
            self.writes += 1
        except Exception:  # the answers are given and the rows stored: log, keep serving
            self.failed += len(batch)
            _log.exception("could not record %d student/mirt_ability events", len(batch))


def _report(instance: dg.DagsterInstance, mats: list[dg.AssetMaterialization]) -> str:
    """Record ``mats`` as runless materializations; returns the path used.

    ``report_runless_asset_event`` (public) stores one event per call: measured at 100k
    students on a PostgreSQL instance, the writer then fell 68 s behind 20,000 updates and
    halved the service's throughput (docs/benchmarks.md). The same events go through
    Dagster's batched write (what the public call does, with a ``DagsterEventBatchMetadata``:
    one storage write per batch) when that internal API is there (dagster 1.13.27, pinned;
    ``seedtest_assets_tests/api`` fails if it moves); else the public call, one by one.
    """
    try:
        from dagster._core.events import (
            DagsterEvent,
            DagsterEventBatchMetadata,
            DagsterEventType,
            StepMaterializationData,
            generate_event_batch_id,
        )
        from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
    except ImportError:  # the internal API moved: correct but slow
        for mat in mats:
            instance.report_runless_asset_event(mat)
        return "public"
    settings.set_env("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE, default_only=True)
    batch_id, last = generate_event_batch_id(), len(mats) - 1
    for i, mat in enumerate(mats):
        instance.report_dagster_event(
            DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                event_specific_data=StepMaterializationData(mat),
                job_name=RUNLESS_JOB_NAME,
            ),
            run_id=RUNLESS_RUN_ID,
            batch_metadata=DagsterEventBatchMetadata(batch_id, i == last),
        )
    return "batched"
