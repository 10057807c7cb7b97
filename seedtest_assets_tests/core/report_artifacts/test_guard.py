"""The batch guard: the store's circuit breaker and the time budget, shared across processes."""

import time
from multiprocessing import get_context

import pytest

from seedtest_assets.core.report_artifacts.guard import BatchGuard


def guard(**kw) -> BatchGuard:
    args = {"threshold": 3, "target": "http://s3", "budget_seconds": 60, "deadline": 1e12}
    return BatchGuard(**{**args, **kw})


def test_breaker_trips_on_consecutive_unanswered_uploads_only():
    g = guard()
    for unreachable in (True, True, False, True, True):  # an answer resets the streak
        g.record_upload(unreachable=unreachable)
    assert g.stopped() is None and g.streak == 2
    g.record_upload(unreachable=True)
    assert g.store_down and not g.budget_spent
    assert g.stopped() == (
        "store judged down after 3 consecutive timeouts or connection failures to "
        "http://s3: not attempted"
    )
    g.record_upload(unreachable=False)  # a late success does not re-open the batch
    assert g.store_down
    with pytest.raises(ValueError):
        guard(threshold=0)


def test_budget_stops_the_batch_and_the_first_cause_stays():
    g = guard(deadline=time.time() - 1, budget_seconds=90)
    assert g.stopped() == "batch time budget of 90 s used up: not attempted"
    for _ in range(3):
        g.record_upload(unreachable=True)
    assert g.budget_spent and not g.store_down
    assert g.cause() == "batch time budget of 90 s used up"


def _fail_uploads(g: BatchGuard, n: int) -> None:
    for _ in range(n):
        g.record_upload(unreachable=True)


def test_a_worker_process_trips_the_breaker_for_everyone():
    g = guard()
    ctx = get_context("spawn")
    p = ctx.Process(target=_fail_uploads, args=(g, 3))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0
    assert g.store_down and g.streak == 3
