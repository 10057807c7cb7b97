"""No credential of ``DATABASE_URL`` (nor ``PGPASSWORD``) ever reaches a person's screen.

Every form libpq accepts is tried: the URL's password, ``?password=`` (libpq's query form),
``sslpassword``, a keyword string (``host=... password=...``) and ``PGPASSWORD``; each carries
a marker that the tests look for in everything a person can read: the CLI's stdout and
stderr (with and without ``--debug``, on a reachable and an unreachable server) and the
Dagster instance's storage after real materializations (the event log with every
materialization's metadata, run records, snapshots; zlib-compressed blobs are unpacked).
The PostgreSQL test server trusts every connection, so a password is accepted and ignored.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import zlib
from pathlib import Path

import dagster as dg
import pytest

from seedtest_assets.core.database_url import (
    DatabaseURLError,
    normalize_database_url,
    redact_url,
)
from seedtest_assets.core.settings import scrub
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.dagster_servers import free_port
from seedtest_assets_tests.test_cli import one_error_line, run_cli

MARK = "Xy7SeCrEtMarK"  # one marker, found case-insensitively


def leaked(text: str) -> bool:
    return MARK.lower() in text.lower()


# --------------------------------------------------------------------------- unit
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://u:{MARK}@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u@h/db?password={MARK}", "postgresql://u@h/db?password=***"),
        (
            f"postgres://u@h:5433/db?sslmode=require&password={MARK}&sslpassword={MARK}",
            "postgresql://u@h:5433/db?password=***&sslmode=require&sslpassword=***",
        ),
        (f"postgresql://u:a%40{MARK}@h/db", "postgresql://u:***@h/db"),
        (f"host=h dbname=d user=u password={MARK}", "host=h dbname=d user=u password=***"),
        (f"host=h password = '{MARK} x\\' y' dbname=d", "host=h password = *** dbname=d"),
        (f"host=h password='{MARK}", "host=h password=***"),  # unterminated quote
        (f"postgresql://u:p@{MARK}@h/db", "postgresql://u:***@h/db"),  # unencoded '@'
        (f"postgresql://u:{MARK}@h:port/db", "<an unparsable database URL, not shown>"),
        ("sqlite:////tmp/w.db", "sqlite:////tmp/w.db"),
    ],
)
def test_redact_url_masks_every_credential_form(url, shown):
    assert redact_url(url) == shown
    assert not leaked(redact_url(url))


def test_normalize_moves_a_query_password_into_the_user_info():
    url = normalize_database_url(f"postgresql://u@h/db?sslmode=require&password={MARK}")
    assert url == f"postgresql+psycopg://u:{MARK}@h/db?sslmode=require"
    # libpq: the query parameter wins over the user-info one, the last one if repeated.
    url = normalize_database_url(f"postgresql://u:old@h/db?password=x&password={MARK}")
    assert url == f"postgresql+psycopg://u:{MARK}@h/db"


def test_a_keyword_string_becomes_the_equivalent_url():
    assert (
        normalize_database_url(f"host=h port=5433 dbname=d user=u password={MARK}")
        == f"postgresql+psycopg://u:{MARK}@h:5433/d"
    )
    assert (
        normalize_database_url("dbname=d host=/var/run/postgresql")
        == "postgresql+psycopg:///d?host=%2Fvar%2Frun%2Fpostgresql"
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql://u:p@{MARK}@h/db", "percent-encode each '@' in the password as %40"),
        (f"host=h password='{MARK}", "libpq cannot parse it"),
        (f"postgresql://u:{MARK}@h:port/db", "not a valid database URL"),
        (f"postgres//me:{MARK}@db", "not a valid database URL"),
    ],
)
def test_unusable_urls_are_refused_without_quoting_them(url, says):
    with pytest.raises(DatabaseURLError) as info:
        normalize_database_url(url)
    assert says in str(info.value) and not leaked(str(info.value))
    # No chained exception (which Dagster would store with a run) carries the text either.
    exc = info.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_scrub_removes_every_secret_and_pgpassword(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", MARK + "pg")
    text = f"failed for a@{MARK}, {MARK}pg and a%40{MARK}; abc stays in abcde"
    out = scrub(text, f"postgresql://u:a%40{MARK}@h/db?sslpassword=abc")
    assert not leaked(out), out
    assert "abcde" in out  # a short secret is replaced only where it stands alone


# --------------------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def pg_database():
    """A migrated PostgreSQL warehouse with one seeded day (factories.planted_day)."""
    from seedtest_assets.core.warehouse import upgrade
    from seedtest_assets_tests.factories import insert_attempts, planted_day, seed_reference

    _require_postgres()
    url = create_postgres_database("seedtest_secrets")
    upgrade(url)
    seed_reference(url)
    insert_attempts(url, planted_day()[0])
    yield url
    drop_postgres_database(url)


def credential_forms(url: str, port: int | None = None) -> dict[str, dict[str, str]]:
    """The environment of each credential form, for the database of ``url`` (on ``port``)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    where = f"{u.host}:{port or u.port or 5432}/{u.database}"
    base = f"postgresql://{u.username}@{where}"
    keywords = f"host={u.host} port={port or u.port or 5432} dbname={u.database}"
    return {
        "userinfo": {"DATABASE_URL": f"postgresql://{u.username}:{MARK}@{where}"},
        "query": {"DATABASE_URL": f"{base}?password={MARK}&sslpassword={MARK}ssl"},
        "keywords": {"DATABASE_URL": f"{keywords} user={u.username} password='{MARK} kw'"},
        "pgpassword": {"DATABASE_URL": base, "PGPASSWORD": MARK},
    }


def unpacked_storage(root: Path) -> str:
    """Everything stored under ``root`` as text: each SQLite file's cells (blobs unpacked
    when zlib-compressed, as Dagster stores snapshots) and every other file's bytes."""
    parts: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        parts.append(raw.decode("utf-8", "replace"))
        if not raw.startswith(b"SQLite format 3"):
            continue
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"'):  # names from the file
                    for cell in row:
                        if isinstance(cell, bytes):
                            with contextlib.suppress(zlib.error):
                                cell = zlib.decompress(cell)
                            cell = cell.decode("utf-8", "replace")
                        parts.append(str(cell))
        finally:
            conn.close()
    return "\n".join(parts)


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["userinfo", "query", "keywords", "pgpassword"])
def test_materializations_store_no_credential(pg_database, form, tmp_path, monkeypatch):
    """features_topic_daily's metadata names the warehouse: masked, in every form."""
    from seedtest_assets.defs.features_topic_daily.assets import features_topic_daily
    from seedtest_assets.defs.resources import warehouse_from_env
    from seedtest_assets_tests.factories import DAY

    for key, value in credential_forms(pg_database)[form].items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = dg.materialize(
            [features_topic_daily],
            resources={"warehouse": warehouse_from_env()},
            instance=instance,
            partition_key=str(DAY),
        )
        assert result.success
        meta = result.asset_materializations_for_node("features_topic_daily")[0].metadata
        shown = meta["warehouse"].value
        assert "127.0.0.1" in shown and pg_database.rsplit("/", 1)[1] in shown
        logs = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
        run = instance.get_run_by_id(result.run_id)
        snapshot = instance.get_job_snapshot(run.job_snapshot_id)
        stored = "\n".join([*logs, dg.serialize_value(run), dg.serialize_value(snapshot)])
    assert "***" in shown or form == "pgpassword", shown
    assert not leaked(shown)
    assert not leaked(stored)
    assert not leaked(unpacked_storage(home))


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("form", ["userinfo", "query", "keywords", "pgpassword"])
def test_the_cli_prints_no_credential(pg_database, form, tmp_path):
    """Every command that takes the warehouse, on the real server and an unreachable one,
    with and without --debug; and the Dagster instance `seedtest report` writes to."""
    env = {
        **credential_forms(pg_database)[form],
        "SEEDTEST_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": None,
    }
    outputs: list[str] = []

    def cli(*args: str, code: int = 0, **extra: str | None) -> str:
        proc = run_cli(*args, env={**env, **extra})
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == code, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    shown = cli("db", "upgrade")
    assert "at revision" in shown and "127.0.0.1" in shown
    cli("theta", "--user", "1", code=3)
    cli("--debug", "theta", "--user", "2", code=3)
    cli("score", "--user", "1")
    cli("report", "--week", "2026-03-02", "--user", "1", "--format", "html", "--dry-run")
    # An unreachable server: the same forms, another port.
    dead = credential_forms(pg_database, port=free_port())[form]
    for args in (("db", "upgrade"), ("--debug", "theta", "--user", "1"), ("score", "--user", "1")):
        text = cli(*args, code=4, **dead)
        assert "Connection refused" in text or "connection failed" in text, text
    assert not leaked("\n".join(outputs)), "\n".join(outputs)
    assert not leaked(unpacked_storage(tmp_path / "home"))


@pytest.mark.parametrize(
    "url", [f"postgresql://u:p@{MARK}@127.0.0.1/db", f"host=127.0.0.1 password='{MARK}"]
)
def test_an_unusable_url_is_one_line_without_its_secret(url, tmp_path):
    for args in (("db", "upgrade"), ("theta", "--user", "1"), ("--debug", "score", "--user", "1")):
        proc = run_cli(*args, env={"DATABASE_URL": url, "SEEDTEST_HOME": str(tmp_path)})
        assert proc.returncode == 2, proc.stderr
        assert not leaked(proc.stdout + proc.stderr), proc.stderr
        if "--debug" not in args:
            line = one_error_line(proc)
            assert "DATABASE_URL" in line
    assert not os.listdir(tmp_path)
