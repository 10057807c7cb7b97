"""The report batch: every student's files rendered and stored across the cores (no Dagster).

Students are spread over a ``spawn`` process pool, one worker per core. Each worker builds a
student's report data (:func:`content.build_report`), renders it with
:class:`render.ReportRenderer`, stores each file (:func:`_store_file`) and returns one
:class:`ArtifactResult` per file. The worker stores what it rendered because the bytes are
already there: sending every PDF back to the step process would serialize the uploads behind
one process and copy each file twice. A :class:`guard.BatchGuard` shared by the workers stops
the batch when the store is judged down or the time budget is spent: the remaining students
fail at once, not attempted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, datetime
from multiprocessing import get_context
from typing import Any

from seedtest_assets.core.lifecycle import die_with_parent, is_child_process
from seedtest_assets.core.report_artifacts.content import StudentInputs, build_report
from seedtest_assets.core.report_artifacts.guard import BatchGuard
from seedtest_assets.core.report_artifacts.render import ReportRenderer, Templates
from seedtest_assets.core.report_artifacts.store import (
    CONTENT_TYPES,
    StoreSettings,
    is_unreachable,
    open_store,
    report_key,
    sha256_hex,
)


@dataclass(frozen=True)
class RenderJob:
    """What every worker needs for a batch (picklable).

    ``store`` None = dry run: render only, write nothing.
    """

    templates: Templates
    week_start: date
    lang: str
    formats: tuple[str, ...]
    generated_at: datetime
    store: StoreSettings | None


@dataclass(frozen=True)
class ArtifactResult:
    """One file of one student: stored (``ok``) or the error that stopped it.

    ``attempted`` False: the batch had stopped (store judged down, time budget spent) before
    this file was rendered; ``error`` says why. ``unreachable``: the upload failed because
    the store did not answer (:func:`store.is_unreachable`).
    """

    user_id: str
    fmt: str
    ok: bool
    key: str = ""
    url: str = ""
    size: int = 0
    sha256: str = ""
    error: str = ""
    theta: float | None = None
    attempted: bool = True
    unreachable: bool = False


def not_attempted(
    students: Sequence[StudentInputs], formats: Sequence[str], reason: str
) -> list[ArtifactResult]:
    """Failed results for files the batch did not try (not rendered, not uploaded)."""
    return [
        ArtifactResult(inp.user_id, fmt, False, error=reason, attempted=False)
        for inp in students
        for fmt in formats
    ]


_WORKER: dict[str, Any] = {}


def _init_worker(job: RenderJob, guard: BatchGuard | None = None) -> None:
    """Per-process state: renderer (typst fonts loaded once), store client, batch guard.

    A pool worker dies with the step that started it (``lifecycle.die_with_parent``): a killed
    step leaves no renderer behind writing files that no row will ever record.
    """
    if is_child_process():
        die_with_parent()
    _WORKER["job"] = job
    _WORKER["guard"] = guard
    _WORKER["renderer"] = ReportRenderer(job.templates)
    _WORKER["store"] = (
        open_store(job.store, should_stop=guard.stopped if guard is not None else None)
        if job.store is not None
        else None
    )


def _render_chunk(chunk: Sequence[StudentInputs]) -> list[ArtifactResult]:
    job: RenderJob = _WORKER["job"]
    renderer: ReportRenderer = _WORKER["renderer"]
    store = _WORKER["store"]
    guard: BatchGuard | None = _WORKER.get("guard")
    out: list[ArtifactResult] = []

    def stopped() -> str | None:
        return guard.stopped() if guard is not None else None

    for inp in chunk:
        if reason := stopped():  # store down or budget spent: no render, no upload
            out.extend(not_attempted([inp], job.formats, reason))
            continue
        try:
            data = build_report(inp, job.lang, job.generated_at)
        except Exception as exc:  # one student's bad data must not stop the batch
            msg = f"content: {type(exc).__name__}: {exc}"
            out.extend(ArtifactResult(inp.user_id, f, False, error=msg) for f in job.formats)
            continue
        theta = data.get("theta_value")
        for i, fmt in enumerate(job.formats):
            if i and (reason := stopped()):
                out.extend(not_attempted([inp], job.formats[i:], reason))
                break
            key = report_key(
                job.store.prefix if job.store else "reports", job.week_start, inp.user_id, fmt
            )
            try:
                body = renderer.render(data, fmt)
            except Exception as exc:
                out.append(
                    ArtifactResult(
                        inp.user_id,
                        fmt,
                        False,
                        key=key,
                        error=f"render: {type(exc).__name__}: {exc}",
                    )
                )
                continue
            if store is None:
                out.append(
                    ArtifactResult(
                        inp.user_id,
                        fmt,
                        True,
                        key=key,
                        size=len(body),
                        sha256=sha256_hex(body),
                        theta=theta,
                    )
                )
                continue
            out.append(_store_file(store, guard, inp.user_id, fmt, key, body, theta))
    return out


def _store_file(
    store: Any,
    guard: BatchGuard | None,
    user_id: str,
    fmt: str,
    key: str,
    body: bytes,
    theta: float | None,
) -> ArtifactResult:
    """Upload one rendered file and tell the batch guard whether the store answered."""
    try:
        obj = store.put(key, body, CONTENT_TYPES[fmt])
    except Exception as exc:
        unreachable = is_unreachable(exc)
        if guard is not None:
            guard.record_upload(unreachable=unreachable)
        return ArtifactResult(
            user_id,
            fmt,
            False,
            key=key,
            error=f"upload: {type(exc).__name__}: {exc}",
            unreachable=unreachable,
        )
    if guard is not None:
        guard.record_upload(unreachable=False)
    return ArtifactResult(
        user_id,
        fmt,
        True,
        key=obj.key,
        url=obj.url,
        size=obj.size,
        sha256=obj.sha256,
        theta=theta,
    )


def default_workers() -> int:
    """One worker per core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def render_batch(
    students: Sequence[StudentInputs],
    job: RenderJob,
    workers: int | None = None,
    guard: BatchGuard | None = None,
) -> Iterator[list[ArtifactResult]]:
    """Render (and store) every student; yields results chunk by chunk as they finish.

    ``workers`` <= 1, or fewer students than 8 per worker, renders in this process (a
    process pool costs ~0.5 s to start: not worth it for a handful). Otherwise a ``spawn``
    pool (safe inside a threaded Dagster run, unlike ``fork``) with one worker per core.

    ``guard``: the batch's breaker and time budget (:mod:`.guard`), shared with the workers.
    Once it stops the batch, workers fail their remaining students without rendering them,
    and chunks not yet started are cancelled here and failed the same way: every student
    gets a result, the batch ends within one per-file deadline of the stop.
    """
    workers = default_workers() if not workers or workers < 1 else workers
    workers = min(workers, max(1, len(students) // 8))
    if workers <= 1:
        _init_worker(job, guard)
        try:
            step = 16
            for i in range(0, len(students), step):
                yield _render_chunk(students[i : i + step])
        finally:
            _WORKER.clear()
        return
    # Chunks small enough to balance the workers and report progress, big enough that
    # pickling and IPC stay negligible.
    size = max(1, min(32, len(students) // (workers * 4)))
    chunks = [students[i : i + size] for i in range(0, len(students), size)]
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(job, guard),
    ) as pool:
        pending = {pool.submit(_render_chunk, c): c for c in chunks}
        while pending:
            # A timeout, so that the time budget is noticed while every worker is stuck.
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in done:
                del pending[fut]
                yield fut.result()
            reason = guard.stopped() if guard is not None else None
            if reason:  # stop handing out work: cancel what no worker has taken yet
                for fut in [f for f in pending if f.cancel()]:
                    yield not_attempted(pending.pop(fut), job.formats, reason)
