"""The batch's guard: a circuit breaker on the store and a total time budget (no Dagster).

One :class:`BatchGuard` per batch, shared by the parent and every render worker process
(its counters are ``multiprocessing`` shared values, handed to the workers when they start):

- **Breaker**: every upload that fails because the store did not answer
  (:func:`store.is_unreachable`: connection failures, timeouts, the per-file deadline) adds one
  to a streak shared by all workers; any upload the store answered, success or error (e.g. a
  403 on one key), resets it. At ``threshold`` consecutive such failures the store is judged
  down: from then on no worker renders or uploads another student; each remaining one fails at
  once with :meth:`reason`, and uploads in flight end at their next retry (the store's
  ``should_stop`` hook) or their per-file deadline, whichever is first.
- **Budget**: past ``deadline`` (wall-clock epoch seconds, the same in every process) no
  student is started either; the reason says the budget was used up.

The first of the two to stop the batch is the one reported.
"""

from __future__ import annotations

import time
from multiprocessing import get_context

RUNNING, STORE_DOWN, BUDGET_SPENT = 0, 1, 2
NOT_ATTEMPTED = "not attempted"


class BatchGuard:
    """Shared stop state of one batch (see the module doc).

    Args:
        threshold: consecutive "did not answer" failures that judge the store down.
        target: where the store is (endpoint URL), for the reason.
        budget_seconds: the batch's time budget, for the reason.
        deadline: epoch seconds (``time.time()``) after which no student starts.
    """

    def __init__(self, threshold: int, target: str, budget_seconds: float, deadline: float) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold}")
        ctx = get_context("spawn")
        self.threshold = threshold
        self.target = target
        self.budget_seconds = budget_seconds
        self.deadline = deadline
        self._streak = ctx.Value("i", 0)
        self._state = ctx.Value("i", RUNNING)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> int:
        return self._state.value

    @property
    def store_down(self) -> bool:
        return self._state.value == STORE_DOWN

    @property
    def budget_spent(self) -> bool:
        return self._state.value == BUDGET_SPENT

    def _stop(self, state: int) -> None:
        with self._state.get_lock():
            if self._state.value == RUNNING:
                self._state.value = state

    def stopped(self) -> str | None:
        """The reason no further student may start, or None while the batch goes on."""
        if self._state.value == RUNNING and time.time() >= self.deadline:
            self._stop(BUDGET_SPENT)
        return self.reason()

    def cause(self) -> str | None:
        """What stopped the batch, e.g. "store judged down after 3 consecutive timeouts or
        connection failures to http://…" (None: nothing did)."""
        state = self._state.value
        if state == STORE_DOWN:
            return (
                f"store judged down after {self.threshold} consecutive timeouts or connection "
                f"failures to {self.target}"
            )
        if state == BUDGET_SPENT:
            return f"batch time budget of {self.budget_seconds:g} s used up"
        return None

    def reason(self) -> str | None:
        """The error of a file not attempted: :meth:`cause` + ": not attempted"."""
        cause = self.cause()
        return f"{cause}: {NOT_ATTEMPTED}" if cause else None

    # ------------------------------------------------------------------ the breaker
    def record_upload(self, unreachable: bool) -> None:
        """After an upload: ``unreachable`` = it failed without an answer from the store."""
        with self._streak.get_lock():
            if not unreachable:
                self._streak.value = 0
                return
            self._streak.value += 1
            tripped = self._streak.value >= self.threshold
        if tripped:
            self._stop(STORE_DOWN)

    @property
    def streak(self) -> int:
        """Consecutive "did not answer" failures so far."""
        return self._streak.value
