"""``report_artifacts`` (weekly batch) and ``student/report_artifacts`` (one student), Dagster.

The work is in :mod:`seedtest_assets.core.report_artifacts.pipeline`; this module maps config and
resources onto it, records per-student materializations in bulk (ADR 0001) and turns failed
students into a clear run failure after the successes are recorded.
"""

import json
import tempfile
from datetime import date

import dagster as dg
from pydantic import Field, field_validator, model_validator

from seedtest_assets.core.options import Lang, Renderer, ReportFormat, allowed
from seedtest_assets.core.report_artifacts.pipeline import BatchResult, Selection, run_batch
from seedtest_assets.core.report_artifacts.render import FORMATS
from seedtest_assets.core.report_artifacts.store import StoreSettings
from seedtest_assets.core.report_artifacts.verify import verify_reports
from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.workloads import REPORT_POD, op_tags
from seedtest_assets.defs.attempts.assets import attempts
from seedtest_assets.defs.mirt_ability.assets import STUDENT_ABILITY, mirt_ability
from seedtest_assets.defs.partitions import (
    USERS_BACKFILL,
    WEEKLY_BACKFILL,
    asset_with_backfill_policy,
    last_complete_week,
    users,
    weekly,
)
from seedtest_assets.defs.report_artifacts.checks import REPORT_CHECKS, report_check_results
from seedtest_assets.defs.resources import ReportStoreResource, WarehouseResource
from seedtest_assets.defs.student_events import record_student_materializations
from seedtest_assets.defs.topic_ability.assets import topic_ability

STUDENT_REPORTS = dg.AssetKey(["student", "report_artifacts"])
#: Failed students listed in metadata and the failure message (all are in the run's logs).
MAX_LISTED_FAILURES = 50


def _check_formats(formats: list[str]) -> list[str]:
    bad = [f for f in formats if f not in allowed(ReportFormat)]
    if bad:
        raise ValueError(f"formats must be among {allowed(ReportFormat)}, got {bad}")
    return formats


class ReportConfig(dg.Config):
    """Which students of the week get a report, and how (launchpad-editable)."""

    org_ids: list[str] = Field(default=[], description="Only these organisations (empty: all).")
    user_ids: list[str] = Field(default=[], description="Only these students (empty: all).")
    max_users: int | None = Field(
        default=None,
        ge=1,
        description="At most this many students, lowest ids first. Empty: env MAX_USERS, "
        "else 1000.",
    )
    active_only: bool = Field(
        default=True, description="Only students with at least one answer in the week."
    )
    dry_run: bool = Field(
        default=False, description="Render everything, upload nothing, record nothing."
    )
    lang: Lang = Field(default="ko", description="Labels: ko | en.")
    # list[Literal] is not a Dagster config type: validated below instead.
    formats: list[str] = Field(default=list(FORMATS), min_length=1, description="html, pdf.")

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        return _check_formats(value)

    workers: int = Field(default=0, ge=0, le=64, description="Render processes (0: one per core).")
    renderer: Renderer = Field(
        default="",
        description="auto | quarto | pandoc (empty: env SEEDTEST_REPORT_RENDERER, else auto).",
    )
    shard_count: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Split the week over this many runs (pods); each renders the students with "
        "user_id % shard_count == shard_index. The schedule sets both from "
        "SEEDTEST_REPORT_SHARDS.",
    )
    shard_index: int = Field(default=0, ge=0, description="This run's shard, 0 .. shard_count-1.")
    time_budget_seconds: float = Field(
        default=0,
        ge=0,
        description="Stop starting students this many seconds after the batch began; the rest "
        "fail as not attempted (0: the store resource's batch_budget_seconds / env "
        "REPORT_BATCH_BUDGET_SECONDS, else 600 s + 1 s per student).",
    )

    @model_validator(mode="after")
    def _shard_in_range(self):
        if self.shard_index >= self.shard_count:
            raise ValueError(
                f"shard_index must be below shard_count ({self.shard_index} >= {self.shard_count})"
            )
        return self


class StudentReportConfig(dg.Config):
    """Re-render one student (or a handful): the week and format options."""

    week_start: str = Field(
        default="",
        description="The report week's Monday, YYYY-MM-DD (empty: the last complete week).",
    )
    lang: Lang = Field(default="ko", description="Labels: ko | en.")
    # list[Literal] is not a Dagster config type: validated below instead.
    formats: list[str] = Field(default=list(FORMATS), min_length=1, description="html, pdf.")

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        return _check_formats(value)

    dry_run: bool = Field(default=False, description="Render only; upload and record nothing.")
    renderer: Renderer = Field(default="", description="auto | quarto | pandoc (empty: env/auto).")

    @field_validator("week_start")
    @classmethod
    def _a_monday(cls, value: str) -> str:
        if value:
            try:
                day = date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"week_start must be YYYY-MM-DD, got {value!r}") from exc
            if day.weekday() != 0:
                raise ValueError(f"week_start must be a Monday, got {value} ({day:%A})")
        return value


def _batch_metadata(result: BatchResult, store: str) -> dict[str, object]:
    failed = result.failed_users
    secs = result.seconds
    rendered = len(result.succeeded_users)
    return {
        "store_judged_down": result.store_down,
        "time_budget_spent": result.budget_spent,
        "stop_reason": result.stop_reason or "none",
        "students_not_attempted": len(result.not_attempted_users),
        "uploads_unanswered": result.unreachable_failures,
        "time_budget_seconds": round(result.time_budget_seconds, 1),
        "breaker_failures": result.breaker_failures,
        "week_start": result.week_start.isoformat(),
        "students_selected": result.selected,
        "students_eligible": result.eligible,
        "students_cut_by_max_users": result.cut,
        "shard": result.shard,
        "students_succeeded": rendered,
        "students_failed": len(failed),
        "failed_user_ids": dg.MetadataValue.json([str(u) for u in failed[:MAX_LISTED_FAILURES]]),
        "rows_recorded": result.recorded,
        "bytes_written": result.bytes_written,
        "dry_run": result.dry_run,
        "renderer": result.route,
        "store": "none (dry run)" if result.dry_run else store,
        "seconds_total": round(secs.get("total", 0.0), 3),
        "seconds_render_and_store": round(secs.get("render_and_store", 0.0), 3),
        "seconds_per_student": round(secs.get("total", 0.0) / max(1, result.selected), 4),
    }


def _per_student(result: BatchResult) -> dict[str, dict[str, object]]:
    """Metadata of each fully stored student (keys, sizes, checksums; URLs are bearer
    tokens and stay out of the event log)."""
    failed = set(result.failed_users)
    out: dict[str, dict[str, object]] = {}
    for a in result.artifacts:
        if not a.ok or a.user_id in failed:
            continue
        m = out.setdefault(
            a.user_id,
            {
                "week_start": result.week_start.isoformat(),
                **({"theta": a.theta} if a.theta is not None else {}),
            },
        )
        m[f"{a.fmt}_key"] = a.key
        m[f"{a.fmt}_bytes"] = a.size
        m[f"{a.fmt}_sha256"] = a.sha256
    return out


def _failure_summary(result: BatchResult) -> str:
    """The first sentence of the run's failure: what stopped the batch, or how many failed."""
    n_failed, n = len(result.failed_users), result.selected
    elapsed = result.seconds.get("total", 0.0)
    if not result.stop_reason:
        return f"{n_failed} of {n} students' reports failed"
    skipped = len(result.not_attempted_users)
    cause = result.stop_reason[0].upper() + result.stop_reason[1:]
    return (
        f"{cause}: {skipped} of {n} students not attempted (not rendered, not uploaded); "
        f"{n_failed} of {n} failed in all, after {elapsed:.1f} s (time budget "
        f"{result.time_budget_seconds:g} s)"
    )


def _fail_if_any(context: dg.AssetExecutionContext, result: BatchResult, meta: dict) -> None:
    """After successes are recorded: fail the run, listing the failed students."""
    if not result.failures:
        return
    skipped = 0
    for uid, fmt, err in result.failures:
        if result.stop_reason and err.startswith(result.stop_reason):
            skipped += 1  # one line for all of them below, not thousands
            continue
        context.log.error("report of student %s (%s) failed: %s", uid, fmt, err)
    if skipped:
        context.log.error(
            "%s files not attempted (%s students not attempted at all): %s",
            skipped,
            len(result.not_attempted_users),
            result.stop_reason,
        )
    listed = ", ".join(str(u) for u in result.failed_users[:MAX_LISTED_FAILURES])
    raise dg.Failure(
        description=f"{_failure_summary(result)} "
        f"(recorded: {result.recorded} files of the others). Failed: {listed}. "
        + (
            "Check the store (docs/operations.md, 'A hung or down report store'), then re-run "
            if result.stop_reason
            else "Re-run "
        )
        + "the partition to retry; stored reports are replaced, not duplicated.",
        metadata={
            **meta,
            "errors": dg.MetadataValue.json(
                [
                    {"user_id": str(u), "format": f, "error": e[:500]}
                    for u, f, e in result.failures[:MAX_LISTED_FAILURES]
                ]
            ),
        },
    )


@asset_with_backfill_policy(
    op_tags=op_tags(REPORT_POD),
    partitions_def=weekly,
    backfill_policy=WEEKLY_BACKFILL,
    # topic_ability: the topic section's θ is read from it (the batch runs no IRT).
    deps=[dg.AssetKey("weekly_kpi"), mirt_ability, topic_ability, attempts],
    group_name="reports",
    kinds={"typst", "s3", "sql"},
    output_required=False,  # a dry run yields nothing: no materialization
    check_specs=[
        dg.AssetCheckSpec(name, asset="report_artifacts", description=desc)
        for name, desc in REPORT_CHECKS.items()
    ],
    description="Weekly report of every selected student (HTML + PDF from "
    "quarto/weekly_report.qmd), stored locally or in S3, one report_artifacts row per stored "
    "file. Fails, after recording the others, if any student's report failed.",
    metadata={"table": "report_artifacts", "template": "quarto/weekly_report.qmd"},
)
def report_artifacts(
    context: dg.AssetExecutionContext,
    config: ReportConfig,
    warehouse: WarehouseResource,
    report_store: ReportStoreResource,
):
    week = date.fromisoformat(context.partition_key)
    selection = Selection(
        org_ids=tuple(config.org_ids),
        user_ids=tuple(config.user_ids),
        max_users=config.max_users,
        active_only=config.active_only,
        shard_count=config.shard_count,
        shard_index=config.shard_index,
    )
    now = utc_now()
    with tempfile.TemporaryDirectory(prefix="seedtest-dry-run-") as scratch:
        # A dry run renders into a scratch folder (never the real store; no rows, deleted
        # afterwards), so that its checks read real files as well.
        store = (
            StoreSettings(local_dir=scratch) if config.dry_run else report_store.store_settings()
        )
        result = run_batch(
            warehouse.engine,
            week,
            selection,
            store=store,
            now=now,
            lang=config.lang,
            formats=config.formats,
            route=config.renderer or None,
            workers=config.workers or None,
            record=not config.dry_run,
            time_budget_seconds=config.time_budget_seconds
            or report_store.batch_budget_seconds
            or None,
        )
        meta = _batch_metadata(result, report_store.describe())
        if result.cut:
            context.log.warning(
                "max_users cut the week to %s of %s eligible students",
                result.eligible - result.cut,
                result.eligible,
            )
        if not config.dry_run:
            # Per-student state in the UI (ADR 0001), for the newest weeks only: a backfill
            # of an old week must not roll a student's "current" report back. Recorded
            # before a failure is raised, like the rows of the students that succeeded.
            meta["per_student_events"] = (
                record_student_materializations(context, STUDENT_REPORTS, _per_student(result))
                if context.partition_key >= last_complete_week(now)
                else "skipped (not the latest week)"
            )
        _fail_if_any(context, result, meta)
        # Read back what a person reads: the HTML's text (else the PDF's).
        fmt = "html" if "html" in config.formats else "pdf"
        checks = report_check_results(
            verify_reports(warehouse.engine, week, result.succeeded_users, store, config.lang, fmt)
        )
    if config.dry_run:
        context.log.info(
            "dry run (nothing uploaded or recorded): %s",
            json.dumps({k: v for k, v in meta.items() if not isinstance(v, dg.MetadataValue)}),
        )
        # No materialization: only the checks of what the batch would have stored.
        yield from checks
        return
    yield dg.MaterializeResult(metadata=meta, check_results=checks)


@asset_with_backfill_policy(
    op_tags=op_tags(REPORT_POD),
    key=STUDENT_REPORTS,
    partitions_def=users,
    backfill_policy=USERS_BACKFILL,
    deps=[
        STUDENT_ABILITY,
        # The report week is run config (default the last complete week): a student's
        # partition depends on the weekly KPIs as a whole.
        dg.AssetDep(dg.AssetKey("weekly_kpi"), partition_mapping=dg.AllPartitionMapping()),
        # The topic section's θ of that week, read from the stored weekly topic_ability.
        dg.AssetDep(topic_ability, partition_mapping=dg.AllPartitionMapping()),
        attempts,
    ],
    group_name="reports",
    kinds={"typst", "s3", "sql"},
    output_required=False,  # a dry run yields nothing: no materialization
    description="One student's weekly report. Materialize a student (partition = user id) to "
    "re-render their report for a week (config week_start; default the last complete week); "
    "the weekly batch records this asset per student in bulk.",
)
def student_report_artifacts(
    context: dg.AssetExecutionContext,
    config: StudentReportConfig,
    warehouse: WarehouseResource,
    report_store: ReportStoreResource,
):
    user_ids = tuple(context.partition_keys)
    now = utc_now()
    week = date.fromisoformat(config.week_start or last_complete_week(now))
    result = run_batch(
        warehouse.engine,
        week,
        Selection(user_ids=user_ids, max_users=len(user_ids), active_only=False),
        store=None if config.dry_run else report_store.store_settings(),
        now=now,
        lang=config.lang,
        formats=config.formats,
        route=config.renderer or None,
        time_budget_seconds=report_store.batch_budget_seconds or None,
    )
    meta = _batch_metadata(result, report_store.describe())
    missing = sorted(
        set(user_ids)
        - {str(u) for u in result.succeeded_users}
        - {str(u) for u in result.failed_users}
    )
    if missing:
        raise dg.Failure(description=f"no such student(s) in users: {missing}", metadata=meta)
    _fail_if_any(context, result, meta)
    if config.dry_run:
        context.log.info("dry run: rendered %s student(s), nothing stored", result.selected)
        return  # nothing yielded: a dry run materializes nothing
    per_student = _per_student(result)
    # One student's materialization carries their files; a handful carry the batch summary.
    one = per_student.get(user_ids[0], {}) if len(user_ids) == 1 else {}
    yield dg.MaterializeResult(metadata={**meta, **one})
