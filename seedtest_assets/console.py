"""The ``seedtest`` console script: what must be set before polars is first imported, then
:func:`seedtest_assets.cli.main`.

``seedtest serve`` runs polars on one thread per worker (``POLARS_MAX_THREADS=1`` unless
set): its frames are one request batch's few thousand rows, which a thread pool does not
speed up, while the pool's idle threads spin. A 16-student scoring call took 35 ms of CPU on
the default 2 threads and 25 ms on 1 (2-core machine, docs/benchmarks.md). Polars reads the
variable once, when it is imported, and the CLI module imports it: hence this module.
"""

import sys

from seedtest_assets.core import settings  # no polars behind it (test_console)


def main() -> int:
    """Entry point of the ``seedtest`` console script; returns the exit code."""
    # The subcommand is the first word that is not an option (``seedtest --debug serve``).
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    if words[:1] == ["serve"]:
        # Workers (uvicorn's spawned processes) inherit it; so does an in-process server.
        settings.set_env("POLARS_MAX_THREADS", "1", default_only=True)
    from seedtest_assets.cli import main as cli_main

    return cli_main()
