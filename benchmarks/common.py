"""Shared benchmark set-up: a PostgreSQL database holding a synthetic population.

The population is generated once per (users, weeks, seed) and remembered in the database's
COMMENT, so repeated benchmark runs reuse it instead of regenerating ~10M attempts.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from seedtest_assets.core.warehouse import make_engine, upgrade

#: The server's admin connection (creates the benchmark databases); BENCH_POSTGRES_URL
#: overrides the local default.
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def machine() -> str:
    """One line describing this machine, for the recorded figures."""
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except OSError:
        pass
    py = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {cores} cores{mem}, Python {py}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(trees: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system, s) used so far, by kind: ``postgres`` (every PostgreSQL
    process), ``this`` (this process) and, for each ``name: pid`` of ``trees``, that process
    and its descendants (a server and its workers). From ``/proc`` (Linux); processes that
    ended are not counted, so take it while they run."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    postgres = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        # The fields after the command name (in parentheses, which may hold spaces).
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry)
        parent[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
        if stat[stat.index("(") + 1 : stat.rindex(")")] == "postgres":
            postgres += used[pid]
    out = {"postgres": postgres, "this": used.get(os.getpid(), 0.0)}
    for name, root in trees.items():
        total = 0.0
        for pid in used:
            p = pid
            while p > 1 and p != root:
                p = parent.get(p, 0)
            if p == root:
                total += used[pid]
        out[name] = total
    return out


def ensure_database(name: str, *, migrate: bool = True) -> str:
    """Create database ``name`` on the local server if missing; migrate (the warehouse's
    schema, unless ``migrate`` is false: e.g. a Dagster instance's database); return its URL."""
    from seedtest_assets.core.settings import normalize_database_url

    admin = create_engine(normalize_database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))  # our constant, not user input
    admin.dispose()
    url = (
        make_url(normalize_database_url(ADMIN_URL))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    if migrate:
        upgrade(url)
    return url


def ensure_population(
    url: str, users: int, weeks: int, seed: int, start: date, id_style: str = "text"
) -> dict:
    """Load the population into ``url`` unless the same one is already there.

    ``id_style``: ``text`` (product-like ids, ``u-000123``) or ``integer`` (the same numbers
    as bare digits): the integer-id baseline of ``benchmarks/ids.py``.

    Returns ``{"reused": bool, "seconds": float}``.
    """
    from seedtest_assets.core.synthetic import SyntheticConfig, generate, load

    marker = (
        f"seedtest population users={users} weeks={weeks} seed={seed} start={start} "
        f"ids={id_style} schema=0008"
    )
    engine = make_engine(url)
    name = engine.url.database
    with engine.connect() as conn:
        current = conn.execute(
            text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"
            ),
            {"n": name},
        ).scalar()
    if current == marker:
        engine.dispose()
        return {"reused": True, "seconds": 0.0}
    t0 = time.perf_counter()
    cfg = SyntheticConfig(
        n_users=users,
        weeks=weeks,
        seed=seed,
        start=start,
        id_style=id_style,  # type: ignore[arg-type]
    )
    pop = generate(cfg)
    load(engine, pop, replace=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        # COMMENT takes no bind parameters; the marker is built from integers and a date.
        conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'"))
    engine.dispose()
    return {"reused": False, "seconds": time.perf_counter() - t0}


def population_arguments(ap: argparse.ArgumentParser, database: str = "seedtest_bench") -> None:
    """The options every population benchmark takes: its size, seed and database."""
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--database", default=database)
    ap.add_argument(
        "--id-style",
        choices=("text", "integer"),
        default="text",
        help="ids of the population: product-like text (default) or bare digits, the "
        "integer-id baseline (its own database, suffix _int)",
    )
    ap.add_argument("--json", default="", help="also write the headline figures to this file")


def open_population(args: argparse.Namespace, start: date) -> str:
    """The database of ``args`` holding their population (made once, then reused); prints
    which, and returns the database URL."""
    name = args.database + ("_int" if args.id_style == "integer" else "")
    url = ensure_database(name)
    setup = ensure_population(url, args.users, args.weeks, args.seed, start, args.id_style)
    how = "reused" if setup["reused"] else f"generated + loaded in {setup['seconds']:.0f} s"
    print(
        f"population: {args.users:,} students x {args.weeks} weeks, {args.id_style} ids ({how})",
        flush=True,
    )
    return url


def write_figures(args: argparse.Namespace, **figures: float) -> None:
    """Write ``figures`` (plus the peak RSS) as JSON to ``args.json``, when given: what
    ``benchmarks/ids.py`` compares between id styles."""
    if not getattr(args, "json", ""):
        return
    import json

    Path(args.json).write_text(
        json.dumps({"id_style": args.id_style, "peak_rss_mb": peak_rss_mb(), **figures})
    )


# --------------------------------------------------------------------------- errors
#: Exit codes as the seedtest CLI's: 1 failed, 2 configuration, 4 database unreachable.
EXIT_FAILED, EXIT_USAGE, EXIT_DATABASE = 1, 2, 4


def _one_line(exc: BaseException) -> tuple[int, str]:
    """(exit code, one line) for an exception escaping a benchmark."""
    import psycopg
    from sqlalchemy.exc import DBAPIError, OperationalError

    from seedtest_assets.core.database_url import redact_url, scrub
    from seedtest_assets.core.settings import DatabaseURLError

    where = redact_url(ADMIN_URL)
    if isinstance(exc, DatabaseURLError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, OperationalError | psycopg.OperationalError):
        err = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        text = scrub(" ".join(str(err).split()), ADMIN_URL)
        return EXIT_DATABASE, (
            f"cannot reach PostgreSQL: {text}; start the server, or point BENCH_POSTGRES_URL "
            f"(now {where}) or --database-url at one"
        )
    if isinstance(exc, subprocess.CalledProcessError):  # psql and friends
        stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
        said = " ".join(stderr.split()) or f"exit status {exc.returncode}"
        code = EXIT_DATABASE if "connection to server" in said else EXIT_FAILED
        return code, f"{Path(str(exc.cmd[0])).name} failed: {scrub(said, ADMIN_URL)}"
    text = scrub(" ".join(str(exc).split()), ADMIN_URL)
    return EXIT_FAILED, f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


def run_main(main: Callable[[], int | None]) -> None:
    """Run a benchmark's ``main`` and exit with its code; an error is one line on stderr
    (``<script>: error: ...``, exit 4 when PostgreSQL cannot be reached), with the traceback
    only when ``--debug`` is on the command line (removed before ``main`` parses it)."""
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    name = Path(sys.argv[0]).name
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        code, line = _one_line(exc)
        if debug:
            from seedtest_assets.core.database_url import scrub

            print(scrub(traceback.format_exc(), ADMIN_URL), end="", file=sys.stderr)
        print(f"{name}: error: {line}", file=sys.stderr)
        sys.exit(code)
    sys.exit(code or 0)
