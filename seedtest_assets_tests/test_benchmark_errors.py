"""The benchmark scripts that take a database: an unreachable PostgreSQL is one line.

Each script runs as a user would (``python benchmarks/<script>.py``) against a port nothing
listens on (``BENCH_POSTGRES_URL``, ``--database-url``, or ``PGPORT`` for psql): exit 4, one
``<script>: error: cannot reach PostgreSQL ...`` line, no traceback, no password; with
``--debug`` the traceback comes first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seedtest_assets_tests.dagster_servers import free_port

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SECRET = "bench-pw-4Kq"


def run_benchmark(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def dead_url() -> str:
    return f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/postgres"


@pytest.mark.parametrize(
    ("script", "args", "how"),
    [
        ("features.py", ("--users", "10", "--weeks", "1"), "admin"),
        ("kpi.py", ("--users", "10", "--weeks", "1"), "admin"),
        ("online.py", ("--users", "10", "--weeks", "1"), "admin"),
        ("weekly.py", ("--users", "10", "--weeks", "1"), "admin"),
        ("generate.py", ("--users", "10", "--weeks", "1"), "admin"),
        ("generate.py", ("--users", "10", "--weeks", "1"), "url"),
        ("partition_spike.py", ("--users", "10"), "pgport"),
    ],
)
def test_an_unreachable_server_is_one_line(script, args, how):
    env: dict[str, str] = {}
    if how == "admin":
        env["BENCH_POSTGRES_URL"] = dead_url()
    elif how == "url":
        args = (*args, "--database-url", dead_url())
    else:
        env["PGPORT"] = str(free_port())
    proc = run_benchmark(script, *args, **env)
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{script}: error: ")
    assert "Connection refused" in lines[0] and ("PostgreSQL" in lines[0] or "psql" in lines[0])
    assert SECRET not in proc.stdout + proc.stderr
    if how == "admin":
        debug = run_benchmark(script, *args, "--debug", **env)
        assert debug.returncode == 4 and "Traceback (most recent call last)" in debug.stderr
        assert debug.stderr.strip().splitlines()[-1].startswith(f"{script}: error: ")
        assert SECRET not in debug.stderr
