"""Every ``seedtest`` subcommand against a warehouse it cannot use: one line, an exit code.

Three conditions, each command that takes the warehouse: an unreachable PostgreSQL server,
a SQLite file that is missing (in a folder that is missing too), and a database that was
never migrated (SQLite and PostgreSQL). Then the demo's own failures (it writes only the
embedded SQLite warehouse under ``SEEDTEST_HOME``). Each error is one ``seedtest: error:``
line (what, where, how to fix), never a traceback unless ``--debug`` asks for it, and
nothing is created on the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from seedtest_assets_tests.conftest import create_postgres_database, drop_postgres_database
from seedtest_assets_tests.dagster_servers import free_port
from seedtest_assets_tests.test_cli import one_error_line, run_cli

pytestmark = pytest.mark.slow

#: Every subcommand that takes the warehouse, with arguments that are otherwise valid.
COMMANDS = {
    "db upgrade": ("db", "upgrade"),
    "db downgrade": ("db", "downgrade", "-1"),
    "generate": ("generate", "--users", "5", "--weeks", "1"),
    "score": ("score", "--user", "u-000001"),
    "theta": ("theta", "--user", "u-000001"),
    "report": ("report", "--week", "2026-03-02", "--dry-run"),
}


def fails_in_one_line(args, env, code: int = 4) -> str:
    proc = run_cli(*args, env=env)
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == "", proc.stdout + proc.stderr
    return one_error_line(proc)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_postgres_server(command, tmp_path):
    port = free_port()
    env = {
        "DATABASE_URL": f"postgresql://analyst:pw-9Zq@127.0.0.1:{port}/seedtest",
        "SEEDTEST_HOME": str(tmp_path / "home"),
    }
    line = fails_in_one_line(COMMANDS[command], env)
    assert f"analyst:***@127.0.0.1:{port}/seedtest" in line  # where (without the password)
    assert "Connection refused" in line and "DATABASE_URL" in line  # what, how to fix
    assert "pw-9Zq" not in line
    # --debug: the traceback, then the same line last.
    proc = run_cli("--debug", *COMMANDS[command], env=env)
    assert proc.returncode == 4 and "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == line
    assert "pw-9Zq" not in proc.stderr
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_sqlite_file_in_a_missing_folder(command, tmp_path):
    missing = tmp_path / "nowhere" / "warehouse.db"
    line = fails_in_one_line(COMMANDS[command], {"DATABASE_URL": f"sqlite:///{missing}"})
    assert str(missing) in line
    if command in ("db upgrade", "generate"):  # they would create the file, not the folder
        assert f"its folder {missing.parent} does not exist; create it" in line
    else:
        assert "SQLite file missing" in line
    assert "SEEDTEST_HOME / DATABASE_URL" in line
    assert not missing.parent.exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_database_that_was_never_migrated(backend, tmp_path):
    if backend == "sqlite":
        path = tmp_path / "blank.db"
        create_engine(f"sqlite:///{path}").connect().close()
        url, where = f"sqlite:///{path}", str(path)
    else:
        from seedtest_assets_tests.conftest import _require_postgres

        _require_postgres()
        url = create_postgres_database("seedtest_cli_blank")
        where = url.rsplit("/", 1)[1]
    try:
        env = {"DATABASE_URL": url, "SEEDTEST_HOME": str(tmp_path / "home")}
        for command in ("db downgrade", "score", "theta", "report"):
            line = fails_in_one_line(COMMANDS[command], env)
            assert "(not migrated)" in line and where in line, line
            assert "downgrade" in line if command == "db downgrade" else "db upgrade" in line
        # The commands that migrate first just do it.
        for command in ("generate", "db upgrade"):
            proc = run_cli(*COMMANDS[command], env=env)
            assert proc.returncode == 0, proc.stderr
    finally:
        if backend == "postgres":
            drop_postgres_database(url)


def test_the_demo_errors_are_one_line(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    line = fails_in_one_line(("demo", "--users", "20"), {"SEEDTEST_HOME": str(a_file)}, code=2)
    assert f"SEEDTEST_HOME {a_file} is a file, not a folder" in line

    home = tmp_path / "home"
    home.mkdir()
    (home / "warehouse.db").write_bytes(b"this is not a database, " * 40)
    line = fails_in_one_line(("demo", "--users", "20"), {"SEEDTEST_HOME": str(home)})
    assert f"{home / 'warehouse.db'} is not a SQLite database" in line and "move it" in line

    proc = run_cli("demo", "--users", "0", env={"SEEDTEST_HOME": str(tmp_path / "h0")})
    assert proc.returncode == 2 and "must be >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "h0").exists()


def test_an_unusable_seedtest_home_for_the_other_commands(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    env = {"SEEDTEST_HOME": str(a_file), "DATABASE_URL": None}
    line = fails_in_one_line(COMMANDS["db upgrade"], env, code=2)
    assert "is a file, not a folder" in line
    assert Path(a_file).read_text() == "x"
