"""The ``seedtest`` console script, run as a user would: exit codes, stderr, side effects."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from seedtest_assets.cli import EPILOG, build_parser
from seedtest_assets.core.warehouse import upgrade
from seedtest_assets.core.warehouse.db import alembic_config
from seedtest_assets_tests.conftest import (
    create_postgres_database,
    drop_postgres_database,
    postgres_available,
)
from seedtest_assets_tests.dagster_servers import free_port

SEEDTEST = Path(sys.executable).with_name("seedtest")
#: A command of each kind that needs an existing warehouse (read-only, re-score, report).
NEEDS_A_WAREHOUSE = (
    ("theta", "--user", "u-000001"),
    ("score", "--user", "u-000001"),
    ("report", "--week", "2026-03-02", "--dry-run"),
)


def run_cli(
    *args: str, env: dict[str, str | None], cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``seedtest`` with ``env`` over this process's environment (None: unset)."""
    full = {**os.environ, **env}
    return subprocess.run(
        [str(SEEDTEST), *args],
        env={k: v for k, v in full.items() if v is not None},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single ``seedtest: error:`` line a failed command prints (and nothing else)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("seedtest: error: "), proc.stderr
    return lines[0]


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
    assert proc.returncode == 4
    assert "no_such_db_seedtest" in one_error_line(proc)  # a clear error...
    assert "hunter2" not in proc.stdout + proc.stderr  # ...without the secret


@pytest.mark.parametrize("args", NEEDS_A_WAREHOUSE, ids=lambda a: a[0])
def test_from_another_directory_one_line_and_no_stray_folder(tmp_path, args):
    """The issue: a raw 'no such table' traceback and a new ./.seedtest left behind."""
    proc = run_cli(*args, env={"SEEDTEST_HOME": None, "DATABASE_URL": None}, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    line = one_error_line(proc)
    assert str(tmp_path / ".seedtest" / "warehouse.db") in line  # where
    assert "seedtest db upgrade" in line and "SEEDTEST_HOME" in line  # how to fix it
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no .seedtest/, no warehouse file


def test_debug_shows_the_traceback(tmp_path):
    home = tmp_path / "home"
    for args in (
        ("--debug", "theta", "--user", "u-000001"),
        ("theta", "--user", "u-000001", "--debug"),
    ):
        proc = run_cli(*args, env={"SEEDTEST_HOME": str(home), "DATABASE_URL": None})
        assert proc.returncode == 4
        assert "Traceback (most recent call last)" in proc.stderr
        assert "WarehouseNotReady" in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("seedtest: error: no warehouse")
    assert not home.exists()


def test_not_migrated_and_old_revision_say_so_and_change_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "warehouse.db").touch()  # e.g. left by an older seedtest
    proc = run_cli(
        "theta", "--user", "u-000001", env={"SEEDTEST_HOME": str(empty), "DATABASE_URL": None}
    )
    assert proc.returncode == 4
    line = one_error_line(proc)
    assert "not migrated" in line and "seedtest db upgrade" in line
    assert (empty / "warehouse.db").stat().st_size == 0

    old = tmp_path / "old.db"
    upgrade(f"sqlite:///{old}", "0003")
    proc = run_cli("score", "--user", "u-000001", env={"DATABASE_URL": f"sqlite:///{old}"})
    assert proc.returncode == 4
    line = one_error_line(proc)
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"at revision 0003, this seedtest needs {head}" in line
    assert "seedtest db upgrade" in line and str(old) in line


def test_unreachable_postgres_is_one_line_without_the_password(tmp_path):
    url = f"postgresql://analyst:s3cr3t-pw@127.0.0.1:{free_port()}/seedtest"
    for args in NEEDS_A_WAREHOUSE:
        proc = run_cli(*args, env={"DATABASE_URL": url, "SEEDTEST_HOME": str(tmp_path / "h")})
        assert proc.returncode == 4, proc.stderr
        line = one_error_line(proc)
        assert "cannot connect to the warehouse" in line and "analyst:***@127.0.0.1" in line
        assert "s3cr3t-pw" not in proc.stdout + proc.stderr
    assert not (tmp_path / "h").exists()


def test_a_postgres_database_without_tables_says_run_db_upgrade(tmp_path):
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    url = create_postgres_database("seedtest_cli_empty")
    try:
        proc = run_cli("theta", "--user", "u-000001", env={"DATABASE_URL": url})
    finally:
        drop_postgres_database(url)
    assert proc.returncode == 4
    line = one_error_line(proc)
    assert "has no seedtest tables (not migrated)" in line and "seedtest db upgrade" in line


def test_a_malformed_database_url_is_not_echoed(tmp_path):
    proc = run_cli("theta", "--user", "u-000001", env={"DATABASE_URL": "postgres//me:pa55word@db"})
    assert proc.returncode == 2
    assert "DATABASE_URL is not a valid database URL" in one_error_line(proc)
    assert "pa55word" not in proc.stderr


def test_bad_date_is_a_clear_error():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--start", "2026-13-01"])


def _actions(parser: argparse.ArgumentParser, path: str = "seedtest"):
    """(command path, action) of every option and positional, subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_has_help_and_the_help_is_plain_text():
    parser = build_parser()
    missing = [
        f"{path} {action.dest}"
        for path, action in _actions(parser)
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == []
    text = parser.format_help()
    assert "``" not in text and ":func:" not in text  # no reST markup
    assert "examples:" in text and "exit codes:" in text
    for code in ("0", "1", "2", "3", "4"):
        assert f"\n  {code}  " in EPILOG
    # Each subcommand's help is plain text too.
    for path, _ in {(p, None) for p, _ in _actions(parser)}:
        words = path.split()[1:]
        if words:
            proc_help = _subparser(parser, words).format_help()
            assert "``" not in proc_help, path


def _subparser(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices[words[0]]
            return _subparser(sub, words[1:]) if words[1:] else sub
    raise KeyError(words)


def test_help_from_the_console_script():
    proc = run_cli("--help", env={})
    assert proc.returncode == 0
    assert "``" not in proc.stdout and "seedtest report --week" in proc.stdout
    for command in ("theta", "report"):
        assert command in proc.stdout
