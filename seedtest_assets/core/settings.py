"""Where things live, read from the environment (never from code or config files).

Every setting has an embedded default so a laptop needs nothing set:

- ``SEEDTEST_HOME``: folder for the embedded warehouse and local reports
  (default ``./.seedtest`` under the working directory).
- ``DATABASE_URL``: the warehouse. Unset -> ``sqlite:///$SEEDTEST_HOME/warehouse.db``.
  ``postgresql://`` URLs are routed to psycopg 3 (``postgresql+psycopg://``); a libpq keyword
  string (``host=... dbname=...``) is accepted too. Shown to people only through
  :func:`redact_url` (every credential form masked: :mod:`seedtest_assets.core.database_url`).

And the one clock of the code, :func:`utc_now`. Tests only (never set in production, and no
deployment file sets it; a warning is logged when it is in effect) can stop it at an instant:
in process with :func:`frozen_utc_now`, and in subprocesses (CLI, Dagster webserver, daemon,
code servers, run workers) with ``SEEDTEST_FROZEN_NOW=2026-03-11T12:30:00`` (ISO 8601, UTC
when no offset is given), which every process that inherits the environment honours.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# Re-exported (the names callers use): the URL helpers live in seedtest_assets.core.database_url.
from seedtest_assets.core.database_url import DatabaseURLError as DatabaseURLError
from seedtest_assets.core.database_url import normalize_database_url as normalize_database_url
from seedtest_assets.core.database_url import redact_url as redact_url
from seedtest_assets.core.database_url import scrub as _scrub

#: Every environment variable the platform reads, and what it is for. :func:`env` reads only
#: these (a typo is a ``KeyError``, not a silently ignored setting); docs/operations.md lists
#: them for operators. Secrets are marked: they are read through ``dg.EnvVar`` or here, and
#: never logged.
VARIABLES: dict[str, str] = {
    "SEEDTEST_HOME": "folder of the embedded warehouse and local reports (default ./.seedtest)",
    "DATABASE_URL": "the warehouse (secret when it holds a password; default: SQLite file)",
    "PGPASSWORD": "libpq's password variable (secret): masked wherever a URL is shown",
    "SEEDTEST_PARTITIONS_START": "first daily and weekly partition (YYYY-MM-DD)",
    "SEEDTEST_FROZEN_NOW": "TEST ONLY: stop the clock at an instant",
    "SEEDTEST_EXECUTOR": "multiprocess (default) or k8s",
    "SEEDTEST_NEW_ATTEMPTS_INTERVAL": "seconds between new_attempts sensor ticks (default 30)",
    "SEEDTEST_ATTEMPTS_LAG_SECONDS": "age in seconds at which the new_attempts sensor reads an "
    "attempt (default 120): later commits fall behind its cursor",
    "SEEDTEST_REPORT_SHARDS": "runs the weekly report batch is split into (default 1)",
    "SEEDTEST_REPORT_RENDERER": "auto (default), quarto or pandoc",
    "SEEDTEST_QUARTO_DIR": "the quarto/ folder (default: the repository's)",
    "ENABLE_IRT_ONLINE_UPDATE": "online theta updates on unless 0/false/no/off",
    "MAX_USERS": "students per weekly report batch (default 1000)",
    "REPORT_FORMAT": "pdf or html (unset: both)",
    "S3_BUCKET": "report store bucket (unset: the local folder)",
    "AWS_REGION": "report store region",
    "S3_ENDPOINT_URL": "S3-compatible endpoint (MinIO, moto)",
    "S3_CONNECT_TIMEOUT_SECONDS": "report store connect timeout",
    "S3_READ_TIMEOUT_SECONDS": "report store read timeout",
    "S3_FILE_DEADLINE_SECONDS": "report store per-file deadline",
    "REPORT_BATCH_BUDGET_SECONDS": "report batch time budget",
    "REPORT_URL_EXPIRY_SECONDS": "lifetime of presigned report URLs",
    "S3_MAX_ATTEMPTS": "report store attempts per file",
    "REPORT_STORE_BREAKER_FAILURES": "unanswered files before the store is judged down",
    "DAGSTER_HOME": "Dagster instance folder",
    "DAGSTER_EVENT_BATCH_SIZE": "Dagster's bulk event-write size (set by the shell)",
    "PGCONNECT_TIMEOUT": "libpq connect timeout (the CLI sets a default of 10 s)",
    "POLARS_MAX_THREADS": "polars' thread pool size (`seedtest serve` sets a default of 1)",
    "JWKS_URL": "θ-update service: the JWKS its tokens are verified against",
    "JWT_AUD": "θ-update service: the tokens' required audience",
    "JWT_ISS": "θ-update service: the tokens' required issuer",
    "JWT_LEEWAY_SECONDS": "θ-update service: clock skew allowed on exp/nbf (default 30)",
    "LOCAL_DEV": "θ-update service: true skips token verification (loopback only)",
    "SEEDTEST_API_BANK_REFRESH_SECONDS": "θ-update service: new-calibration check (default 10)",
    "SEEDTEST_API_MAX_BATCH": "θ-update service: students scored per core call (default 64)",
    "SEEDTEST_API_CONCURRENCY": "θ-update service: scoring calls at once per worker (default 1)",
    "SEEDTEST_API_DAGSTER_EVENTS": "θ-update service: false = no UI events (default on)",
    "PROMETHEUS_MULTIPROC_DIR": "θ-update service: metrics folder shared by workers",
    "SOURCE_ATTEMPTS": "relation read as attempts: [schema.]name (default ours)",
    "SOURCE_ATTEMPTS_COLUMNS": "attempts renames: ours=product,...",
    "SOURCE_USERS": "relation read as users: [schema.]name (default ours)",
    "SOURCE_USERS_COLUMNS": "users renames: ours=product,...",
    "SOURCE_ITEMS": "relation read as items: [schema.]name (default ours)",
    "SOURCE_ITEMS_COLUMNS": "items renames: ours=product,...",
    "SOURCE_TOPICS": "relation read as topics: [schema.]name (default ours)",
    "SOURCE_TOPICS_COLUMNS": "topics renames: ours=product,...",
    "SOURCE_SESSIONS": "relation read as exam_sessions: [schema.]name (default ours)",
    "SOURCE_SESSIONS_COLUMNS": "exam_sessions renames: ours=product,...",
    "SOURCE_ORGANIZATIONS": "relation read as organizations: [schema.]name (default ours)",
    "SOURCE_ORGANIZATIONS_COLUMNS": "organizations renames: ours=product,...",
}


def env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of the environment variable ``name``, stripped; ``""`` when unset.

    ``environ`` replaces ``os.environ`` (tests). Raises ``KeyError`` for a name not in
    :data:`VARIABLES`, so every variable the code reads is listed in one place.
    """
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a known setting (add it to settings.VARIABLES)")
    return (os.environ if environ is None else environ).get(name, "").strip()


def set_env(name: str, value: str, *, default_only: bool = False) -> None:
    """Set a known variable for this process and its children (``default_only``: only when
    unset), e.g. ``DAGSTER_HOME`` for the demo's instance."""
    env(name)  # refuses unknown names
    if default_only:
        os.environ.setdefault(name, value)
    else:
        os.environ[name] = value


def pop_env(name: str) -> str:
    """Remove a known variable from this process's environment; its value, or ``""``."""
    env(name)
    return os.environ.pop(name, "").strip()


#: Executors ``SEEDTEST_EXECUTOR`` may name.
EXECUTORS = ("multiprocess", "k8s")


def executor() -> str:
    """``SEEDTEST_EXECUTOR`` (default ``multiprocess``).

    Raises:
        SettingsError: any other value.
    """
    choice = env("SEEDTEST_EXECUTOR").lower() or "multiprocess"
    if choice not in EXECUTORS:
        raise SettingsError(f"SEEDTEST_EXECUTOR must be one of {EXECUTORS}, not {choice!r}")
    return choice


def positive_int(
    name: str, default: int, *, maximum: int | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """An integer setting ``name`` in ``1..maximum`` (``default`` when unset).

    Raises:
        SettingsError: not an integer, or out of range.
    """
    raw = env(name, environ)
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if n < 1 or (maximum is not None and n > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        raise SettingsError(f"{name} must be {bound}, got {n}")
    return n


def scrub(text: str, url: str | None = None) -> str:
    """``text`` with every credential of ``url`` and of ``PGPASSWORD`` masked (``***``)."""
    return _scrub(text, url, env("PGPASSWORD"))


def home_path() -> Path:
    """The ``SEEDTEST_HOME`` folder, *not* created (for read-only commands)."""
    return Path(env("SEEDTEST_HOME") or Path.cwd() / ".seedtest").resolve()


class SettingsError(ValueError):
    """A setting cannot be used as given. ``str(exc)``: one line saying which and why."""


def seedtest_home() -> Path:
    """The folder holding laptop state (created on first use).

    Raises:
        SettingsError: ``SEEDTEST_HOME`` names a file, or the folder cannot be created.
    """
    home = home_path()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SettingsError(
            f"SEEDTEST_HOME {home} is a file, not a folder: point SEEDTEST_HOME at a folder "
            "(it is created if missing)"
        ) from None
    except OSError as exc:
        raise SettingsError(
            f"cannot create SEEDTEST_HOME {home}: {exc.strerror}; point SEEDTEST_HOME at a "
            "folder you can write"
        ) from None
    return home


#: First partition when neither ``SEEDTEST_PARTITIONS_START`` nor a demo's record says.
DEFAULT_PARTITIONS_START = date(2025, 1, 6)
#: The file (under ``SEEDTEST_HOME``) where ``seedtest demo`` records the first day of its data.
PARTITIONS_START_FILE = "partitions_start"


def partitions_start() -> date:
    """The first daily and weekly partition: the Monday on or before the configured day.

    ``SEEDTEST_PARTITIONS_START`` (YYYY-MM-DD; production sets it to the first day of its
    data); else the day the demo recorded in ``$SEEDTEST_HOME/partitions_start`` (so the UI,
    the CLI and the demo's runs agree on the laptop); else 2025-01-06. Partitions before the
    data would show as "missing" in the UI and make backfills walk into empty weeks.
    """
    raw = env("SEEDTEST_PARTITIONS_START")
    if not raw:
        home = Path(env("SEEDTEST_HOME") or Path.cwd() / ".seedtest")
        recorded = home / PARTITIONS_START_FILE
        raw = recorded.read_text().strip() if recorded.is_file() else ""
    try:
        day = date.fromisoformat(raw) if raw else DEFAULT_PARTITIONS_START
    except ValueError as exc:
        raise ValueError(
            f"SEEDTEST_PARTITIONS_START must be a date YYYY-MM-DD, got {raw!r}"
        ) from exc
    return day - timedelta(days=day.weekday())


def default_database_url() -> str:
    """The embedded SQLite warehouse file under :func:`seedtest_home`."""
    return f"sqlite:///{seedtest_home() / 'warehouse.db'}"


def database_url(*, create_home: bool = True) -> str:
    """The warehouse URL: ``DATABASE_URL`` if set, else the embedded SQLite file.

    ``create_home=False`` names the embedded file without creating ``SEEDTEST_HOME``: a
    read-only command must not leave a folder behind where there is no warehouse.
    """
    url = env("DATABASE_URL")
    if url:
        return normalize_database_url(url)
    if not create_home:
        return f"sqlite:///{home_path() / 'warehouse.db'}"
    return default_database_url()


#: TEST ONLY. When set (ISO 8601, e.g. ``2026-03-11T12:30:00``; naive = UTC), :func:`utc_now`
#: returns that instant in every process that inherits the environment. Unset or empty: the
#: real clock. Never set it in a deployment.
FROZEN_NOW_ENV = "SEEDTEST_FROZEN_NOW"

_log = logging.getLogger(__name__)
#: The in-process override of :func:`frozen_utc_now` (module-wide: seen by every thread).
_frozen: datetime | None = None
_warned: set[str] = set()


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def parse_frozen_now(raw: str) -> datetime:
    """``SEEDTEST_FROZEN_NOW``'s value as a naive UTC datetime.

    Raises:
        ValueError: not an ISO 8601 date-time (a typo must not silently mean "real time").
    """
    try:
        return _naive_utc(datetime.fromisoformat(raw.strip()))
    except ValueError as exc:
        raise ValueError(
            f"{FROZEN_NOW_ENV}={raw!r} is not an ISO 8601 date-time (e.g. 2026-03-11T12:30:00)"
        ) from exc


def utc_now() -> datetime:
    """Now as a naive UTC datetime: the warehouse's timestamp convention.

    The code's one clock: assets, sensors, jobs and the CLI all ask it. Unless a test froze
    it, it is the real clock. Test-only overrides, first match wins:

    1. :func:`frozen_utc_now` (in process, e.g. ``dg.materialize`` or a sensor evaluated with
       ``build_sensor_context``);
    2. the ``SEEDTEST_FROZEN_NOW`` environment variable (subprocesses: the CLI, the Dagster
       webserver, daemon, code servers and run workers that tests start), read at each call.

    Neither is ever on by default.
    """
    if _frozen is not None:
        return _frozen
    raw = os.environ.get(FROZEN_NOW_ENV, "").strip()
    if raw:
        frozen = parse_frozen_now(raw)
        if raw not in _warned:
            _warned.add(raw)
            _log.warning("%s=%s: the clock is frozen (test only)", FROZEN_NOW_ENV, raw)
        return frozen
    return datetime.now(UTC).replace(tzinfo=None)


class FrozenClock:
    """The handle :func:`frozen_utc_now` yields: move the frozen instant during a test."""

    @property
    def now(self) -> datetime:
        assert _frozen is not None, "the clock is no longer frozen"
        return _frozen

    def set(self, at: datetime) -> datetime:
        """Freeze at ``at`` (naive = UTC; aware = converted)."""
        global _frozen
        _frozen = _naive_utc(at)
        return _frozen

    def advance(self, delta: timedelta) -> datetime:
        """Move the frozen instant by ``delta``."""
        return self.set(self.now + delta)

    def env(self) -> dict[str, str]:
        """``{"SEEDTEST_FROZEN_NOW": <the instant>}``: the same frozen now for a subprocess."""
        return {FROZEN_NOW_ENV: self.now.isoformat()}


@contextlib.contextmanager
def frozen_utc_now(at: datetime) -> Iterator[FrozenClock]:
    """TEST ONLY: :func:`utc_now` returns ``at`` (naive = UTC) in this process until exit.

    Nests (the previous override is restored on exit). It freezes our clock only, not
    Dagster's: a partition key must exist at the real time too, so tests freeze at instants
    in the past (after ``SEEDTEST_PARTITIONS_START``).
    """
    global _frozen
    previous = _frozen
    clock = FrozenClock()
    clock.set(at)
    try:
        yield clock
    finally:
        _frozen = previous
