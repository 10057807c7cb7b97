"""The ``seedtest`` console script sets what must precede polars' import (console.py)."""

import os
import subprocess
import sys


def _in_a_fresh_python(code: str, env: dict[str, str] | None = None) -> str:
    full = {k: v for k, v in os.environ.items() if k != "POLARS_MAX_THREADS"}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**full, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()


def test_the_console_module_loads_no_polars_before_it_sets_the_threads():
    code = "import sys, seedtest_assets.console; print('polars' in sys.modules)"
    assert _in_a_fresh_python(code) == "False"


# `serve` (after a global option too) gets one polars thread; other commands keep the pool;
# a value the operator set wins.
CASES = [
    (["--debug", "serve", "--port", "1"], {}, "1"),
    (["score", "--user", "u"], {}, "default"),
    (["serve"], {"POLARS_MAX_THREADS": "2"}, "2"),
]


def test_serve_runs_polars_on_one_thread_unless_told_otherwise():
    for argv, env, want in CASES:
        code = (
            "import sys, seedtest_assets.cli as cli\n"
            "cli.main = lambda: 0\n"  # stop before the command runs
            f"sys.argv = ['seedtest', *{argv!r}]\n"
            "import seedtest_assets.console as c\n"
            "c.main()\n"
            "import os; print(os.environ.get('POLARS_MAX_THREADS', 'default'))"
        )
        assert _in_a_fresh_python(code, env) == want, argv
