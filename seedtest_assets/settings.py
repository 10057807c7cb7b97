"""Where things live, read from the environment (never from code or config files).

Every setting has an embedded default so a laptop needs nothing set:

- ``SEEDTEST_HOME``: folder for the embedded warehouse and local reports
  (default ``./.seedtest`` under the working directory).
- ``DATABASE_URL``: the warehouse. Unset -> ``sqlite:///$SEEDTEST_HOME/warehouse.db``.
  ``postgresql://`` URLs are routed to psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url


def home_path() -> Path:
    """The ``SEEDTEST_HOME`` folder, *not* created (for read-only commands)."""
    return Path(os.environ.get("SEEDTEST_HOME") or Path.cwd() / ".seedtest").resolve()


def seedtest_home() -> Path:
    """The folder holding laptop state (created on first use)."""
    home = home_path()
    home.mkdir(parents=True, exist_ok=True)
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
    raw = os.environ.get("SEEDTEST_PARTITIONS_START", "").strip()
    if not raw:
        home = Path(os.environ.get("SEEDTEST_HOME") or Path.cwd() / ".seedtest")
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


def normalize_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg 3; leave every other URL as given.

    ``postgres://`` (Heroku style) and ``postgresql://`` both become ``postgresql+psycopg://``;
    an explicit driver (``postgresql+psycopg2://``) is kept.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def database_url(*, create_home: bool = True) -> str:
    """The warehouse URL: ``DATABASE_URL`` if set, else the embedded SQLite file.

    ``create_home=False`` names the embedded file without creating ``SEEDTEST_HOME``: a
    read-only command must not leave a folder behind where there is no warehouse.
    """
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return normalize_database_url(url)
    if not create_home:
        return f"sqlite:///{home_path() / 'warehouse.db'}"
    return default_database_url()


def utc_now() -> datetime:
    """Now as a naive UTC datetime: the warehouse's timestamp convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def redact_url(url: str) -> str:
    """The URL with its password masked, for logs and metadata."""
    return make_url(url).render_as_string(hide_password=True)
