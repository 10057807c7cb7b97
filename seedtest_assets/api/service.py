"""The service's state: the cached item bank, the batcher, and one update.

Requests that arrive while a scoring call is running are scored together in the next call
(at most ``max_batch`` students, one call per ``lookback_days`` value): the core's fixed cost
per call (reading, validating, scoring and appending through polars and one transaction,
~25 ms) is then shared, where one call per request would cap a worker at ~40 updates/s. Up to
``concurrency`` calls run at once, so that their database round trips overlap. A student is
never in two calls at once, so every accepted request writes exactly one ``mirt_ability``
row (``source = 'api'``), and two requests for one student are scored one after the other.

The bank (:class:`~seedtest_assets.core.mirt_ability.pipeline.ScoringBasis`) is loaded at
start and reloaded when :func:`~seedtest_assets.core.mirt_ability.pipeline.basis_stamp`
changes (checked every ``bank_refresh_seconds``): a new calibration is used without a
restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from seedtest_assets.api import metrics
from seedtest_assets.api.config import ApiConfig
from seedtest_assets.api.events import DagsterEvents
from seedtest_assets.core import settings
from seedtest_assets.core.mirt_ability.online import ThetaResult, update_theta
from seedtest_assets.core.mirt_ability.pipeline import ScoringBasis, basis_stamp, scoring_basis

_log = logging.getLogger("seedtest.api")

MODEL = "2PL"  # the original's API scored 2PL only
DISABLED_MESSAGE = (
    "online theta updates are switched off (ENABLE_IRT_ONLINE_UPDATE=false): theta not updated"
)


@dataclass
class _Request:
    user_id: str
    lookback_days: int
    session_id: str | None
    future: asyncio.Future[ThetaResult] = field(repr=False)


class ThetaService:
    """One worker's θ-update machinery (started and stopped by the app's lifespan)."""

    def __init__(self, engine: Engine, config: ApiConfig, events: DagsterEvents | None = None):
        self.engine, self.config, self.events = engine, config, events
        self.basis: ScoringBasis | None = None
        self._pending: deque[_Request] = deque()
        self._in_flight: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.last_refresh_error: str | None = None
        self._last_now = datetime.min
        self._clock = threading.Lock()  # several calls may run at once (concurrency > 1)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await asyncio.to_thread(self.refresh_basis)
        if self.events is not None:
            self.events.start()
        self._tasks = [
            asyncio.create_task(self._batcher(), name="theta-batcher"),
            asyncio.create_task(self._refresher(), name="bank-refresher"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.events is not None:
            await asyncio.to_thread(self.events.stop)
        await asyncio.to_thread(self.engine.dispose)

    def refresh_basis(self) -> bool:
        """Reload the bank if a new calibration (or weekly population) landed; True if it
        changed. Errors keep the bank in use (and show in ``/readyz``)."""
        try:
            today = settings.utc_now().date()
            stamp = basis_stamp(self.engine, MODEL, today)
            if self.basis is not None and stamp == self.basis.stamp:
                self.last_refresh_error = None
                return False
            basis = scoring_basis(self.engine, MODEL, today) if stamp is not None else None
        except Exception as exc:  # the database is down: keep serving with what we have
            self.last_refresh_error = f"{type(exc).__name__}: {settings.scrub(str(exc))}"[:300]
            _log.warning("item bank refresh failed: %s", self.last_refresh_error)
            return False
        self.last_refresh_error = None
        previous = self.basis.version if self.basis is not None else None
        self.basis = basis
        if basis is not None:
            metrics.set_item_bank(MODEL, basis.version, basis.n_items, previous)
            _log.info("item bank %s: %d items", basis.version, basis.n_items)
        return True

    async def _refresher(self) -> None:
        while True:
            await asyncio.sleep(self.config.bank_refresh_seconds)
            await asyncio.to_thread(self.refresh_basis)

    def warehouse_ok(self) -> str | None:
        """None if the warehouse answers, else why not."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return f"{type(exc).__name__}: {settings.scrub(str(exc))}"[:300]
        return None

    # ------------------------------------------------------------------ updates
    async def update(
        self, user_id: str, lookback_days: int, session_id: str | None = None
    ) -> ThetaResult:
        """Re-score ``user_id`` now (batched with concurrent requests)."""
        if not self.config.online_enabled:
            return ThetaResult(user_id, "noop", message=DISABLED_MESSAGE)
        future: asyncio.Future[ThetaResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(user_id, lookback_days, session_id, future))
        self._wake.set()
        return await future

    def _take_batch(self) -> list[_Request]:
        """The next call's requests: distinct students not being scored by a running call,
        with the first such request's ``lookback_days``, at most ``max_batch``; the rest stay
        queued in order."""
        batch: list[_Request] = []
        seen: set[str] = set(self._in_flight)
        kept: deque[_Request] = deque()
        lookback: int | None = None
        while self._pending:
            r = self._pending.popleft()
            if lookback is None and r.user_id not in seen:
                lookback = r.lookback_days
            if (
                len(batch) < self.config.max_batch
                and r.lookback_days == lookback
                and r.user_id not in seen
            ):
                batch.append(r)
                seen.add(r.user_id)
            else:
                kept.append(r)
        self._pending = kept
        return batch

    async def _batcher(self) -> None:
        """Start a scoring call whenever requests wait and fewer than ``concurrency`` calls
        run (default 1: more calls in one process only contend for the GIL, measured; more
        workers scale instead)."""
        running: set[asyncio.Task[None]] = set()
        while True:
            if not self._pending or len(running) >= self.config.concurrency:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [r for r in self._take_batch() if not r.future.cancelled()]
            if not batch:
                self._wake.clear()  # only students already being scored wait: their turn
                await self._wake.wait()  # comes when that call ends
                continue
            self._in_flight.update(r.user_id for r in batch)
            task = asyncio.create_task(self._run_batch(batch))
            running.add(task)
            task.add_done_callback(self._finished(running))

    def _finished(self, running: set[asyncio.Task[None]]):
        """A done-callback: forget the call, then wake the batcher (in this order: woken
        while the call still counted as running, it would sleep with requests waiting)."""

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            self._wake.set()

        return done

    async def _run_batch(self, batch: list[_Request]) -> None:
        metrics.BATCH_SIZE.observe(len(batch))
        try:
            results = await asyncio.to_thread(self._score, batch)
        except Exception as exc:
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(exc)
        else:
            for r in batch:
                if not r.future.done():
                    r.future.set_result(results[r.user_id])
        finally:
            self._in_flight.difference_update(r.user_id for r in batch)

    def _score(self, batch: list[_Request]) -> dict[str, ThetaResult]:
        """One core call for ``batch`` (in a worker thread); records the UI events."""
        # Strictly increasing per worker: a student's rows never share a fitted_at (even under
        # a frozen test clock); across workers the unique index decides (retried below).
        with self._clock:
            now = max(settings.utc_now(), self._last_now + timedelta(microseconds=1))
            self._last_now = now
        for attempt in range(3):
            try:
                update = update_theta(
                    self.engine,
                    [r.user_id for r in batch],
                    now=now,
                    model=MODEL,
                    lookback_days=batch[0].lookback_days,
                    source="api",
                    basis=self.basis,
                )
                break
            except IntegrityError:
                # Another worker wrote a row for one of these students at this very
                # microsecond (uq_mirt_ability_rescore): nothing was written; go again later.
                if attempt == 2:
                    raise
                with self._clock:
                    now = max(now, self._last_now) + timedelta(microseconds=1)
                    self._last_now = now
                time.sleep(0.001)
        results = {r.user_id: r for r in update.results}
        if self.events is not None and update.rows.height:
            sessions = {r.user_id: r.session_id for r in batch}
            meta: dict[str, dict[str, object]] = defaultdict(dict)
            for row in update.rows.iter_rows(named=True):
                u = str(row["user_id"])
                meta[u] = {
                    "week_start": str(row["week_start"]),
                    "theta": float(row["theta"]),
                    "se": float(row["se"]),
                    "n_responses": int(row["n_responses"]),
                    "source": "api",
                    "version": str(row["version"]),
                    "updated_at": results[u].to_api()["updated_at"],
                }
                if sessions.get(u):
                    meta[u]["session_id"] = sessions[u]
            self.events.submit(meta)
        return results
