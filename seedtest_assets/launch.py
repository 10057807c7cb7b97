"""One week's reports through Dagster, from a process (what ``seedtest report`` runs).

:func:`launch_week` executes ``report_artifacts_job`` for the week's partition in this process
on :meth:`DagsterInstance.get` (``DAGSTER_HOME``; unset: ``$SEEDTEST_HOME/dagster`` with the
repository's ``dagster.yaml``, as the demo does), so the run, its logs and the materialization
show in the Dagster UI like a scheduled one. It then lists the files the run stored (the
``report_artifacts`` rows it wrote) or, for a dry run, the files it would have stored.

Selection: as the weekly schedule (students active in the week, lowest ids first, at most
``max_users``) unless students are named: named students get their report even when they did
not practise that week (``active_only`` off), as ``student/report_artifacts`` does.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import Engine

from seedtest_assets.core import settings
from seedtest_assets.core.report_artifacts.render import FORMATS
from seedtest_assets.runs import failure_message, prepare_dagster_home

JOB = "report_artifacts_job"
ASSET = "report_artifacts"
#: ``REPORT_FORMAT``: ``pdf`` or ``html``; unset or empty: both.
FORMAT_ENV = "REPORT_FORMAT"


def formats_from_env(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The formats ``REPORT_FORMAT`` asks for (``pdf`` | ``html``; unset: all of ``FORMATS``).

    Raises:
        ValueError: any other value.
    """
    raw = settings.env(FORMAT_ENV, environ).lower()
    if not raw:
        return tuple(FORMATS)
    if raw not in FORMATS:
        raise ValueError(
            f"{FORMAT_ENV} must be one of {', '.join(FORMATS)} (or unset for both), got {raw!r}"
        )
    return (raw,)


@dataclass(frozen=True)
class ReportRequest:
    """What to render: the week and the selection (the asset's ``ReportConfig``)."""

    week: date
    user_ids: tuple[str, ...] = ()
    org_ids: tuple[str, ...] = ()
    max_users: int | None = None
    formats: tuple[str, ...] = tuple(FORMATS)
    lang: str = "ko"
    dry_run: bool = False

    @property
    def active_only(self) -> bool:
        """Named students get a report even if inactive that week; otherwise only the active."""
        return not self.user_ids

    def asset_config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "user_ids": list(self.user_ids),
            "org_ids": list(self.org_ids),
            "active_only": self.active_only,
            "formats": list(self.formats),
            "lang": self.lang,
            "dry_run": self.dry_run,
        }
        if self.max_users is not None:
            config["max_users"] = self.max_users
        return config

    def run_config(self, console_log_level: str = "CRITICAL") -> dict[str, object]:
        """The job's run config; every event stays in the instance (and the UI) whatever
        the console shows."""
        return {
            "ops": {ASSET: {"config": self.asset_config()}},
            "loggers": {"console": {"config": {"log_level": console_log_level}}},
        }


@dataclass
class ReportLaunch:
    """What a launch did.

    Attributes:
        files: path (local store) or URL (S3) of each file the run stored, by student and
            format; for a dry run the files it would have stored.
        students: students with a stored file (dry run: selected).
        failure: the run's failure message (None: it succeeded).
        metadata: the materialization's metadata (empty for a dry run or a failure).
    """

    run_id: str
    week: date
    success: bool
    dry_run: bool
    dagster_home: str
    store: str
    files: list[str] = field(default_factory=list)
    students: int = 0
    bytes: int = 0
    failure: str | None = None
    metadata: dict[str, object] = field(default_factory=dict)
    #: Asset checks of the run that did not pass (name and severity).
    failed_checks: list[str] = field(default_factory=list)
    #: (level name, message) of what the asset logged at WARNING or above (e.g. each
    #: failed student, the max_users cut), from the run's event log.
    messages: list[tuple[str, str]] = field(default_factory=list)


class LaunchConfigError(ValueError):
    """The environment cannot launch a run (e.g. ``DAGSTER_HOME`` is not a folder)."""


def dagster_home() -> Path:
    """``DAGSTER_HOME``; unset: ``$SEEDTEST_HOME/dagster`` prepared as the demo does (and
    ``DAGSTER_HOME`` set to it for this process).

    Raises:
        LaunchConfigError: ``DAGSTER_HOME`` is set but not an absolute path to a folder.
    """
    current = settings.env("DAGSTER_HOME")
    if current:
        path = Path(current)
        if not path.is_absolute() or not path.is_dir():
            raise LaunchConfigError(
                f"DAGSTER_HOME={current} is not an existing folder (absolute path): create it "
                "(with a dagster.yaml) or unset DAGSTER_HOME to use $SEEDTEST_HOME/dagster"
            )
        return path

    return prepare_dagster_home(settings.seedtest_home())


def _location(url: str) -> str:
    """A local file's path (from its ``file://`` URL); any other URL as it is."""
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else url


def _would_store(engine: Engine, request: ReportRequest, store) -> tuple[int, list[str]]:
    """A dry run's students and the paths / ``s3://`` URLs their files would have."""
    from seedtest_assets.core.report_artifacts.pipeline import Selection, select_students
    from seedtest_assets.core.report_artifacts.store import report_key

    selection = Selection(
        org_ids=request.org_ids,
        user_ids=request.user_ids,
        max_users=request.max_users,
        active_only=request.active_only,
    )
    ids = select_students(engine, request.week, selection).frame["user_id"].to_list()
    out = []
    for uid in ids:
        for fmt in request.formats:
            key = report_key(store.prefix, request.week, uid, fmt)
            if store.kind == "s3":
                out.append(f"s3://{store.bucket}/{key}")
            else:
                out.append(str(Path(store.local_dir).resolve() / key))
    return len(ids), out


def _stored_files(
    engine: Engine, request: ReportRequest, since: datetime
) -> tuple[int, int, list[str]]:
    """(students, bytes, locations) of the week's rows this run wrote: stamped at or after
    ``since`` (the run's start), in the requested formats, of the named students if any."""
    import polars as pl

    from seedtest_assets.core.report_artifacts.pipeline import stored_artifacts

    rows = stored_artifacts(engine, request.week).filter(
        (pl.col("generated_at") >= since) & pl.col("format").is_in(list(request.formats))
    )
    if request.user_ids:
        rows = rows.filter(pl.col("user_id").is_in(list(request.user_ids)))
    files = [_location(u) for u in rows["url"].to_list()]
    return rows["user_id"].n_unique(), int(rows["file_size_bytes"].sum() or 0), files


def _user_messages(instance, run_id: str) -> list[tuple[str, str]]:
    """What the run's code logged at WARNING or above (not Dagster's own step events)."""
    return [
        (logging.getLevelName(entry.level).lower(), entry.user_message)
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is None and entry.level >= logging.WARNING
    ]


def launch_week(
    engine: Engine,
    request: ReportRequest,
    *,
    tags: dict[str, str] | None = None,
    console_log_level: str = "CRITICAL",
) -> ReportLaunch:
    """Run ``report_artifacts_job`` for ``request.week`` through Dagster; list its files.

    Args:
        engine: the warehouse the code location's resource also reads (``DATABASE_URL``).
        tags: extra run tags (the partition tag is always set).
        console_log_level: Dagster's console logger (default: silent; the asset's warnings
            and errors come back in :attr:`ReportLaunch.messages`).

    Returns:
        :class:`ReportLaunch` (a failed run is a result, not an exception).
    """
    if set(request.formats) - set(FORMATS) or not request.formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}")
    import dagster as dg

    # backfill_policy and partition mappings are "beta" in Dagster 1.13: noise for an operator.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    from seedtest_assets.definitions import build_defs

    defs = build_defs()

    home = dagster_home()
    store_resource = defs.resources["report_store"].process_config_and_initialize()
    store = store_resource.store_settings()
    job = defs.resolve_job_def(JOB)
    since = settings.utc_now()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config=request.run_config(console_log_level),
            tags={**(tags or {}), "dagster/partition": request.week.isoformat()},
            raise_on_error=False,
        )
        messages = _user_messages(instance, result.run_id)
    launch = ReportLaunch(
        run_id=result.run_id,
        week=request.week,
        success=result.success,
        dry_run=request.dry_run,
        dagster_home=str(home),
        store="none (dry run)" if request.dry_run else store_resource.describe(),
        messages=messages,
    )
    launch.failed_checks = [
        f"{ev.check_name} ({ev.severity.value})"
        for ev in result.get_asset_check_evaluations()
        if not ev.passed
    ]
    if not result.success:
        launch.failure = failure_message(result)
    else:
        mats = result.asset_materializations_for_node(ASSET)
        if mats:
            launch.metadata = {k: v.value for k, v in mats[0].metadata.items()}
    if request.dry_run:
        launch.students, launch.files = _would_store(engine, request, store)
    else:  # a failed run keeps the files of the students that succeeded: list them too
        launch.students, launch.bytes, launch.files = _stored_files(engine, request, since)
    return launch
