"""Shared fixtures: warehouses on SQLite (a temp file) and on a real PostgreSQL.

PostgreSQL: ``TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
is the admin connection; each test session creates its own database and drops it at the end.
Without a reachable server the PostgreSQL tests skip locally, but fail under ``CI=true``:
CI must never count a skipped PostgreSQL test as a pass.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# The tests use dates from 2025 on: pin the first partition so that a demo's record in
# ./.seedtest/partitions_start (settings.partitions_start) cannot move it under them. Set
# before anything imports seedtest_assets.defs.partitions; subprocesses inherit it.
os.environ["SEEDTEST_PARTITIONS_START"] = "2025-01-06"

from seedtest_assets.core.settings import FrozenClock, frozen_utc_now
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets_tests.clock import NOON

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin_engine():
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def postgres_available() -> bool:
    try:
        with _admin_engine().connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False


def _require_postgres() -> None:
    if postgres_available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL not reachable at {ADMIN_URL} (required under CI=true)")
    pytest.skip(f"PostgreSQL not reachable at {ADMIN_URL}")


def create_postgres_database(prefix: str = "seedtest_test") -> str:
    """Create an empty database and return its psycopg URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin_engine().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))  # name is ours, not user input
    return (
        make_url(ADMIN_URL)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    with _admin_engine().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated, empty PostgreSQL warehouse for the test session."""
    _require_postgres()
    url = create_postgres_database()
    upgrade(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A migrated, empty SQLite warehouse file."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgrade(url)
    return url


def _truncate_all(url: str) -> None:
    from seedtest_assets.core.warehouse.schema import metadata

    engine = make_engine(url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty warehouse on each backend (PostgreSQL tables are emptied after)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
        upgrade(url)
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    _truncate_all(url)
    yield url
    _truncate_all(url)


@pytest.fixture
def clock(request) -> Iterator[FrozenClock]:
    """The code's clock (``settings.utc_now``) frozen for the test: at the instant given by
    indirect parametrization (``@pytest.mark.parametrize("clock", [...], indirect=True)``),
    else at the test module's ``FROZEN_NOW``, else at ``NOON``. Fixtures that depend on it see
    the same frozen now as the test; ``clock.set``/``clock.advance`` move it."""
    at = getattr(request, "param", None) or getattr(request.module, "FROZEN_NOW", NOON)
    with frozen_utc_now(at) as frozen:
        yield frozen


# ---- a real S3 endpoint over HTTP (moto server), for the report store and its assets
@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto, in a thread of this process) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch) -> None:
    """Dummy credentials (moto accepts any); no shared config files read."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bucket(moto_endpoint, aws_env) -> str:
    """A fresh, empty bucket on the moto server."""
    import boto3

    name = f"reports-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="ap-northeast-2").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    return name
