"""The weekly report batch: select students, read their week, render, store, record (no Dagster).

:func:`run_batch` is what the ``report_artifacts`` asset (whole week), ``student/report_artifacts``
(one student) and the benchmark call:

1. :func:`select_students`: the students of a week by structured options (organisations,
   explicit ids, active in the week, at most ``max_users``, lowest ids first). Only SQLAlchemy
   Core statements with bound parameters: no SQL text from options, unlike the original's
   ``--cohort`` WHERE clause.
2. :func:`read_inputs`: their KPI row, weekly θ history, goals, valid attempts over the
   look-back window, and their topic θ as stored by the ``topic_ability`` asset (read, never
   recomputed here: a missing partition is :class:`TopicAbilityMissingError`), as
   :class:`StudentInputs`.
3. :func:`batch.render_batch`: content + HTML + PDF per student across the cores; each file is
   uploaded by the worker that rendered it. A :class:`guard.BatchGuard` bounds the batch: a
   total time budget (:func:`default_time_budget`, from the batch's start) and a circuit
   breaker that judges the store down after ``store.breaker_failures`` consecutive uploads
   without an answer; either one fails the remaining students at once, "not attempted".
4. :func:`record_artifacts`: one ``report_artifacts`` row per stored file, written only after
   its upload succeeded, in chunks as results arrive (a crash loses no recorded success). A
   re-run deletes and re-inserts the same (week, user, format) keys: replaces, never duplicates.
   A failed file keeps its previous row (and object), if any.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core import settings
from seedtest_assets.core.attempts.read import read_valid_attempts
from seedtest_assets.core.mirt_ability import table as abilities
from seedtest_assets.core.mirt_ability.pipeline import (
    DEFAULT_LOOKBACK_WEEKS,
    latest_calibrated_week,
)
from seedtest_assets.core.mirt_item_params.pipeline import stored_item_params
from seedtest_assets.core.report_artifacts import table
from seedtest_assets.core.report_artifacts.batch import ArtifactResult, RenderJob, render_batch
from seedtest_assets.core.report_artifacts.content import (
    LANGS,
    StudentInputs,
    TopicStats,
    report_charset,
)
from seedtest_assets.core.report_artifacts.guard import BatchGuard
from seedtest_assets.core.report_artifacts.render import (
    FORMATS,
    Templates,
    convert_templates,
    font_face_css,
)
from seedtest_assets.core.report_artifacts.store import StoreSettings
from seedtest_assets.core.source import attempts, topics, users
from seedtest_assets.core.topic_ability import table as topic_table
from seedtest_assets.core.topic_ability.pipeline import usable_items
from seedtest_assets.core.topic_ability.table import read_topic_ability
from seedtest_assets.core.warehouse import transaction
from seedtest_assets.core.weekly_kpi import table as kpi_table

DEFAULT_MAX_USERS = 1000
MAX_USERS_ENV = "MAX_USERS"
#: Ids per IN list: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
ID_CHUNK = 5000
#: Results recorded per transaction while the batch runs.
RECORD_EVERY = 200
#: Default time budget of a batch: this much, plus ``BUDGET_PER_STUDENT_SECONDS`` a student. A
#: healthy batch takes ~0.03 s a student (docs/benchmarks.md): 131 students get 12 min
#: (vs ~5 s needed), 1000 get 27 min (vs ~30 s on moto with 2 cores).
BUDGET_BASE_SECONDS = 600.0
BUDGET_PER_STUDENT_SECONDS = 1.0


def default_time_budget(students: int) -> float:
    """Seconds a batch of ``students`` may take: 600 s + 1 s per student."""
    return BUDGET_BASE_SECONDS + BUDGET_PER_STUDENT_SECONDS * max(0, students)


def default_max_users() -> int:
    """``MAX_USERS`` from the environment, else 1000 (the original's default)."""
    return settings.positive_int(MAX_USERS_ENV, DEFAULT_MAX_USERS)


@dataclass(frozen=True)
class Selection:
    """Which students get a report (structured options, never SQL text).

    Attributes:
        org_ids: only these organisations (empty = all).
        user_ids: only these students (empty = all).
        max_users: at most this many, lowest user ids first (None = ``MAX_USERS`` or 1000).
        active_only: only students with at least one attempt in the report week.
        shard_count, shard_index: this run renders only the students with
            ``crc32(user_id) % shard_count == shard_index`` (CRC-32 of the id's UTF-8 bytes:
            stable across processes and versions, unlike Python's or polars' hash) of the
            whole selection (after ``max_users``), so that ``shard_count`` runs (pods) share
            one week disjointly.
    """

    org_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    max_users: int | None = None
    active_only: bool = True
    shard_count: int = 1
    shard_index: int = 0

    def __post_init__(self) -> None:
        if self.shard_count < 1 or not 0 <= self.shard_index < self.shard_count:
            raise ValueError(
                f"need shard_count >= 1 and 0 <= shard_index < shard_count, got "
                f"{self.shard_index}/{self.shard_count}"
            )

    def limit(self) -> int:
        n = self.max_users if self.max_users is not None else default_max_users()
        if n < 1:
            raise ValueError(f"max_users must be >= 1, got {n}")
        return n


@dataclass(frozen=True)
class SelectedStudents:
    """The selected students (``user_id, display_name, org_name, goal_theta, goal_date``) of
    this shard, and how many matched (all shards) before ``max_users`` cut the list."""

    frame: pl.DataFrame
    eligible: int
    #: Students after the ``max_users`` cut, all shards together.
    kept: int

    @property
    def truncated(self) -> int:
        return self.eligible - self.kept


def week_bounds(week_start: date) -> tuple[datetime, datetime]:
    """The report week ``[Monday 00:00, next Monday 00:00)`` as naive UTC datetimes."""
    lo = datetime.combine(week_start, datetime.min.time())
    return lo, lo + timedelta(days=7)


def _chunks(ids: Sequence[str], n: int = ID_CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(ids), n):
        yield [str(x) for x in ids[i : i + n]]


def select_students(engine: Engine, week_start: date, selection: Selection) -> SelectedStudents:
    """The students of ``selection`` for the week, lowest ids first, at most ``max_users``;
    of those, only this shard's (``crc32(user_id) % shard_count == shard_index``)."""
    if week_start.weekday() != 0:
        raise ValueError(f"week_start must be a Monday, got {week_start}")
    week_end = week_start + timedelta(days=7)
    with engine.connect() as conn:
        frame, eligible = users.select_students(
            conn,
            org_ids=selection.org_ids,
            user_ids=selection.user_ids,
            among=(
                attempts.users_with_attempts(week_start, week_end, known_distinct=True)
                if selection.active_only
                else None
            ),
            limit=selection.limit(),
        )
    kept = frame.height
    if selection.shard_count > 1:
        # After the cut, so that the shards together are exactly the unsharded selection.
        crc = pl.col("user_id").map_elements(
            lambda u: zlib.crc32(str(u).encode()), return_dtype=pl.Int64
        )
        frame = frame.filter(crc % selection.shard_count == selection.shard_index)
    return SelectedStudents(frame, int(eligible), kept)


# --------------------------------------------------------------------------- inputs
def _read_kpis(engine: Engine, week_start: date, user_ids: Sequence[str]) -> dict[str, dict]:
    """``weekly_kpi.kpis`` of the week per student (missing rows: absent)."""
    with engine.connect() as conn:
        return kpi_table.kpis_by_user(kpi_table.read_kpis(conn, week_start, user_ids))


def _read_history(
    engine: Engine, week_start: date, user_ids: Sequence[str], weeks: int
) -> pl.DataFrame:
    """Weekly θ (``user_id, week_start, theta, se, growth``) of the last ``weeks`` weeks: the
    weekly ``mirt_ability`` rows, i.e. the one θ per student-week every reader shows."""
    with engine.connect() as conn:
        hist = abilities.read_weekly_history(conn, week_start, weeks, user_ids)
    if hist.height == 0:
        return pl.DataFrame(
            schema={
                c: abilities.ROWS_SCHEMA[c]
                for c in ("user_id", "week_start", "theta", "se", "growth")
            }
        )
    # One row per week (a re-run week has one weekly row; keep the last if ever more).
    return hist.unique(["user_id", "week_start"], keep="last").sort("user_id", "week_start")


class TopicAbilityMissingError(RuntimeError):
    """The week's ``topic_ability`` partition was never materialized (the reports read it)."""


def _week_topic_stats(valid: pl.DataFrame, week_start: date) -> pl.DataFrame:
    """Per (user, topic): the window's n and correct, the week's answers/correct/minutes."""
    lo, hi = week_bounds(week_start)
    in_week = (pl.col("attempted_at") >= lo) & (pl.col("attempted_at") < hi)
    return valid.group_by("user_id", "topic_id").agg(
        pl.len().alias("n"),
        pl.col("is_correct").sum().alias("n_correct"),
        in_week.sum().alias("week_attempts"),
        (in_week & pl.col("is_correct")).sum().alias("week_correct"),
        (pl.col("response_time_ms").filter(in_week).sum() / 60_000.0).alias("week_minutes"),
    )


def _stored_topic_theta(
    engine: Engine, week_start: date, user_ids: Sequence[str], valid: pl.DataFrame, model: str
) -> pl.DataFrame:
    """``user_id, topic_id, theta, se`` of the students from the stored ``topic_ability``.

    Raises:
        TopicAbilityMissingError: the week has no rows although the students answered items
            the week's (latest) item parameters cover: the partition was never materialized.
    """
    with engine.connect() as conn:
        stored = read_topic_ability(conn, week_start, user_ids)
        week_rows = stored.height or topic_table.week_rows(conn, week_start)
    if stored.height and (stored["model"] != model).any():
        raise ValueError(
            f"topic_ability of week {week_start} holds {sorted(set(stored['model']))} "
            f"abilities, the reports asked for {model}"
        )
    if not week_rows:
        calibrated = latest_calibrated_week(engine, model, week_start)
        items = stored_item_params(engine, calibrated, model) if calibrated else pl.DataFrame()
        scorable = (
            valid.filter(pl.col("item_id").is_in(usable_items(items)["item_id"].to_list())).height
            if items.height
            else 0
        )
        if scorable:
            raise TopicAbilityMissingError(
                f"topic_ability has no rows for week {week_start}, but the selected students "
                f"have {scorable:,} answers in its window to items calibrated on {calibrated}: "
                f"materialize the asset topic_ability for partition {week_start} first (it runs "
                "in mirt_weekly_job, after mirt_item_params), then the reports"
            )
    return stored.select("user_id", "topic_id", "theta", "se")


def read_inputs(
    engine: Engine,
    week_start: date,
    students: pl.DataFrame,
    *,
    now: datetime,
    lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS,
    model: str = "2PL",
) -> list[StudentInputs]:
    """Everything the reports of ``students`` need, one :class:`StudentInputs` each (in order).

    Args:
        students: ``select_students(...).frame``.
        now: naive UTC, for validating attempts (no "future" answers).
        lookback_weeks: window of the topic counts and the θ history (the window of
            ``mirt_ability`` and ``topic_ability``).
        model: the IRT model of the stored topic θ.

    Raises:
        TopicAbilityMissingError: the week's ``topic_ability`` partition is missing.
    """
    ids = students["user_id"].to_list()
    if not ids:
        return []
    end = week_start + timedelta(days=7)
    start = end - timedelta(weeks=lookback_weeks)
    kpis = _read_kpis(engine, week_start, ids)
    history = _read_history(engine, week_start, ids, lookback_weeks)
    if len(ids) > ID_CHUNK:
        # One read of the whole window beats a filtered scan per chunk: the weekly batch's
        # 42,081 students of 100k read in 20.2 s, against 7.5 s per chunk of 5,000 (67 s).
        wanted = pl.Series(ids, dtype=pl.String).implode()
        valid = read_valid_attempts(engine, start, end, now=now).filter(
            pl.col("user_id").is_in(wanted)
        )
    else:
        valid = pl.concat(
            [read_valid_attempts(engine, start, end, now=now, user_ids=c) for c in _chunks(ids)]
        )
    theta = _stored_topic_theta(engine, week_start, ids, valid, model)
    with engine.connect() as conn:
        names = topics.read_topic_names(conn)
    stats = (
        _week_topic_stats(valid, week_start)
        .join(theta, on=["user_id", "topic_id"], how="left")
        .join(names, on="topic_id", how="left")
    )
    lo, hi = week_bounds(week_start)
    days = (
        valid.filter((pl.col("attempted_at") >= lo) & (pl.col("attempted_at") < hi))
        .group_by("user_id")
        .agg(pl.col("attempted_at").dt.date().n_unique().alias("days"))
    )
    days_by_user = dict(zip(days["user_id"].to_list(), days["days"].to_list(), strict=True))
    hist_by_user = {
        k[0]: [(r["week_start"], r["theta"], r["se"]) for r in g.iter_rows(named=True)]
        for k, g in history.group_by("user_id")
    }
    growth_by_user = {
        r["user_id"]: r["growth"]
        for r in history.filter(pl.col("week_start") == week_start).iter_rows(named=True)
    }
    topics_by_user = {
        k[0]: [
            TopicStats(
                topic_id=str(r["topic_id"]),
                name=r["name"] or f"#{r['topic_id']}",
                name_en=r["name_en"],
                week_attempts=int(r["week_attempts"]),
                week_correct=int(r["week_correct"]),
                week_minutes=float(r["week_minutes"] or 0.0),
                n=int(r["n"]),
                n_correct=int(r["n_correct"]),
                theta=r["theta"],
                se=r["se"],
            )
            for r in g.sort("topic_id").iter_rows(named=True)
        ]
        for k, g in stats.group_by("user_id")
    }
    out = []
    for r in students.iter_rows(named=True):
        uid = str(r["user_id"])
        out.append(
            StudentInputs(
                user_id=uid,
                name=r["display_name"],
                org=r["org_name"] or "",
                week_start=week_start,
                goal_theta=r["goal_theta"],
                goal_date=r["goal_date"],
                kpis=kpis.get(uid),
                history=tuple(hist_by_user.get(uid, ())),
                growth=growth_by_user.get(uid),
                topics=tuple(topics_by_user.get(uid, ())),
                active_days=int(days_by_user.get(uid, 0)),
            )
        )
    return out


# --------------------------------------------------------------------------- recording
def record_artifacts(
    engine: Engine, week_start: date, results: Sequence[ArtifactResult], generated_at: datetime
) -> int:
    """Replace the ``report_artifacts`` rows of the successful ``results``; returns rows written.

    Rows are keyed (week_start, user_id, format): the delete covers exactly the keys written.
    """
    ok = [r for r in results if r.ok]
    if not ok:
        return 0
    frame = pl.DataFrame(
        {
            "week_start": [week_start] * len(ok),
            "user_id": [r.user_id for r in ok],
            "format": [r.fmt for r in ok],
            "url": [r.url for r in ok],
            "file_size_bytes": [r.size for r in ok],
            "sha256": [r.sha256 for r in ok],
            "generated_at": [generated_at] * len(ok),
        },
        schema=table.ARTIFACTS_SCHEMA,
    )
    with transaction(engine) as conn:
        return table.replace_keys(conn, week_start, frame)


# --------------------------------------------------------------------------- the batch
@dataclass
class BatchResult:
    """What a batch did. ``failures``: (user_id, format, error) of every file not stored."""

    week_start: date
    selected: int = 0
    eligible: int = 0
    #: Students cut by ``max_users`` (all shards together).
    cut: int = 0
    shard: str = "1/1"
    dry_run: bool = False
    route: str = ""
    artifacts: list[ArtifactResult] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    recorded: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    #: The batch's time budget (seconds from its start) and breaker threshold.
    time_budget_seconds: float = 0.0
    breaker_failures: int = 0
    #: What stopped the batch early ("" = nothing): the store judged down (with the endpoint)
    #: or the time budget used up.
    stop_reason: str = ""
    store_down: bool = False
    budget_spent: bool = False

    @property
    def failed_users(self) -> list[str]:
        return sorted({u for u, _, _ in self.failures})

    @property
    def not_attempted_users(self) -> list[str]:
        """Students none of whose files was tried (the batch had stopped before them)."""
        tried = {a.user_id for a in self.artifacts if a.attempted}
        return sorted({a.user_id for a in self.artifacts if not a.attempted} - tried)

    @property
    def unreachable_failures(self) -> int:
        """Files whose upload failed because the store did not answer."""
        return sum(1 for a in self.artifacts if a.unreachable)

    @property
    def succeeded_users(self) -> list[str]:
        failed = set(self.failed_users)
        return sorted({a.user_id for a in self.artifacts if a.ok} - failed)

    @property
    def bytes_written(self) -> int:
        return sum(a.size for a in self.artifacts if a.ok)


def prepare_templates(lang: str, route: str | None, charset_extra: Sequence[str]) -> Templates:
    """The batch's templates with the HTML font subset for the batch's characters."""
    templates = convert_templates(lang, route)
    css = font_face_css(report_charset(lang, charset_extra), templates.font_dir)
    return templates.with_html_head(css)


def run_batch(
    engine: Engine,
    week_start: date,
    selection: Selection,
    *,
    store: StoreSettings | None,
    now: datetime,
    lang: str = "ko",
    formats: Sequence[str] = FORMATS,
    route: str | None = None,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    record: bool = True,
    time_budget_seconds: float | None = None,
) -> BatchResult:
    """Render the reports of a week for the selected students; store and record them.

    Args:
        store: where to write; None = render only (no file, no row).
        record: write ``report_artifacts`` rows; False with a store = a dry run that keeps
            the files somewhere else (a scratch folder the checks read back), records nothing.
        now: naive UTC; stamped as ``generated_at``.
        lang: "ko" or "en" (labels).
        formats: any of "html", "pdf".
        route: "auto" | "quarto" | "pandoc" (None: ``SEEDTEST_REPORT_RENDERER`` or auto).
        workers: render processes (None: one per core).
        on_progress: called with (files done, files total) after each chunk.
        time_budget_seconds: seconds from the start after which no further student is
            started (the rest fail, "not attempted"); None or 0:
            :func:`default_time_budget` of the selected students.

    The store's circuit breaker (``store.breaker_failures`` consecutive uploads the store
    did not answer) fails the remaining students the same way; ``stop_reason``,
    ``store_down`` and ``budget_spent`` of the result say which stopped the batch.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {formats}")
    result = BatchResult(week_start=week_start, dry_run=store is None or not record)
    recording = store is not None and record
    t0 = time.perf_counter()
    selected = select_students(engine, week_start, selection)
    result.selected, result.eligible = selected.frame.height, selected.eligible
    result.cut = selected.truncated
    result.shard = f"{selection.shard_index + 1}/{selection.shard_count}"
    inputs = read_inputs(engine, week_start, selected.frame, now=now)
    t1 = time.perf_counter()
    result.seconds["select_and_read"] = t1 - t0
    if not inputs:
        result.seconds["total"] = t1 - t0
        return result
    extra = [*selected.frame["display_name"].to_list(), *selected.frame["org_name"].to_list()]
    extra += [t.name + (t.name_en or "") for i in inputs for t in i.topics]
    templates = prepare_templates(lang, route, extra)
    result.route = templates.route
    t2 = time.perf_counter()
    result.seconds["templates"] = t2 - t1
    job = RenderJob(templates, week_start, lang, formats, now, store)
    budget = time_budget_seconds or default_time_budget(len(inputs))
    if budget < 0:
        raise ValueError(f"time_budget_seconds must be >= 0, got {time_budget_seconds}")
    result.time_budget_seconds = budget
    threshold = store.breaker_failures if store is not None else StoreSettings().breaker_failures
    result.breaker_failures = threshold
    guard = BatchGuard(
        threshold=threshold,
        target=store.target() if store is not None else "(no store)",
        budget_seconds=budget,
        # Wall clock: the workers are other processes. Counted from the batch's start.
        deadline=time.time() + budget - (time.perf_counter() - t0),
    )
    total = len(inputs) * len(formats)
    pending: list[ArtifactResult] = []
    record_seconds = 0.0
    for chunk in render_batch(inputs, job, workers, guard):
        result.artifacts.extend(chunk)
        result.failures.extend((r.user_id, r.fmt, r.error) for r in chunk if not r.ok)
        pending.extend(chunk)
        if recording and len(pending) >= RECORD_EVERY:
            tr = time.perf_counter()
            result.recorded += record_artifacts(engine, week_start, pending, now)
            record_seconds += time.perf_counter() - tr
            pending = []
        if on_progress:
            on_progress(len(result.artifacts), total)
    if recording and pending:
        tr = time.perf_counter()
        result.recorded += record_artifacts(engine, week_start, pending, now)
        record_seconds += time.perf_counter() - tr
    result.stop_reason = guard.cause() or ""
    result.store_down, result.budget_spent = guard.store_down, guard.budget_spent
    t3 = time.perf_counter()
    result.seconds["render_and_store"] = t3 - t2 - record_seconds
    result.seconds["record"] = record_seconds
    result.seconds["total"] = t3 - t0
    return result


def stored_artifacts(engine: Engine, week_start: date) -> pl.DataFrame:
    """The ``report_artifacts`` rows of a week (user_id, format, url, size, sha256, time),
    ordered by student and format: what a summary or a teacher's list shows."""
    with engine.connect() as conn:
        return table.read_week(conn, week_start)
