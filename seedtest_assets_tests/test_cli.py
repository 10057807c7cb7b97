"""The ``seedtest`` console script, run as a user would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from seedtest_assets.cli import build_parser
from seedtest_assets.warehouse.db import alembic_config

SEEDTEST = Path(sys.executable).with_name("seedtest")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SEEDTEST), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_upgrade_creates_the_embedded_warehouse(tmp_path):
    proc = run_cli("db", "upgrade", env={"SEEDTEST_HOME": str(tmp_path), "DATABASE_URL": ""})
    assert proc.returncode == 0, proc.stderr
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"at revision {head}" in proc.stdout
    assert (tmp_path / "warehouse.db").exists()


def test_db_upgrade_failure_never_prints_the_password(tmp_path):
    proc = run_cli(
        "db",
        "upgrade",
        env={
            "DATABASE_URL": "postgresql://postgres:hunter2@127.0.0.1:5432/no_such_db_seedtest",
            "SEEDTEST_HOME": str(tmp_path),
        },
    )
    assert proc.returncode != 0
    assert "no_such_db_seedtest" in proc.stderr  # a clear error...
    assert "hunter2" not in proc.stdout + proc.stderr  # ...without the secret


def test_bad_date_is_a_clear_error():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--start", "2026-13-01"])
