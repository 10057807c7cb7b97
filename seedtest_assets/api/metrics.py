"""Prometheus metrics of the service (``GET /metrics``), correct with several workers.

With ``seedtest serve --workers N`` (N > 1) every worker is its own process: the command sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker writes its values there,
and ``/metrics`` (whichever worker answers) aggregates all of them (prometheus_client's
multiprocess mode). With one worker the registry is the process's own.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from seedtest_assets.core import settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STATUSES = ("ok", "noop", "error")

THETA_UPDATES = Counter(
    "theta_update",  # exposed as theta_update_total (the original's name)
    "θ updates answered, by status (ok: a row was written; noop: nothing to score; error).",
    ["status"],
)
for _status in STATUSES:
    THETA_UPDATES.labels(_status)

LATENCY = Histogram(
    "theta_update_duration_seconds",
    "Time from the request's arrival to its answer (update-theta, after authentication).",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0),
)
BATCH_SIZE = Histogram(
    "theta_update_batch_students",
    "Students scored together in one call of the core (requests that arrived together).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
ITEM_BANK = Gauge(
    "theta_item_bank_info",
    "The item bank in use (value 1 for its version label).",
    ["model", "version"],
    multiprocess_mode="livemax",
)
ITEM_BANK_ITEMS = Gauge(
    "theta_item_bank_items",
    "Items in the item bank in use.",
    multiprocess_mode="livemax",
)


def set_item_bank(model: str, version: str | None, n_items: int, previous: str | None) -> None:
    """Show ``version`` as the bank in use (and ``previous`` as no longer)."""
    if previous and previous != version:
        ITEM_BANK.labels(model, previous).set(0)
    if version:
        ITEM_BANK.labels(model, version).set(1)
    ITEM_BANK_ITEMS.set(n_items)


def exposition() -> tuple[bytes, str]:
    """(body, content type) of ``/metrics``: every worker's values when multiprocess."""
    if settings.env(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
