"""The ``seedtest`` command line (argparse; entry point :func:`main`).

Commands: ``db upgrade``, ``db downgrade``, ``generate``, ``demo``, ``score``, ``theta``,
``report``, ``serve``, ``source check``; see :data:`EPILOG` (what ``seedtest --help`` prints)
for examples and exit codes.

Errors the user can fix (no warehouse, an old schema, an unreachable server, an unknown
student, a bad option) are one line on stderr and a documented exit code; ``--debug`` adds
the traceback. Commands that only read never create ``SEEDTEST_HOME`` or a warehouse file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import traceback
from collections.abc import Sequence
from datetime import date, timedelta
from typing import NoReturn

from seedtest_assets.core import settings
from seedtest_assets.core.ids import id_problem, shown
from seedtest_assets.core.settings import scrub

# Exit codes (documented in EPILOG).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_WAREHOUSE = 4

DESCRIPTION = (
    "SeedTest Analytics from the command line: migrate the warehouse, generate synthetic "
    "data, run the demo, re-score a student, read a student's stored theta, and render a "
    "week's reports through Dagster."
)

EPILOG = """\
examples:
  seedtest db upgrade                          create / migrate the warehouse
  seedtest db downgrade 0004                   revert migrations (refuses to drop data)
  seedtest source check                        the source relations (SOURCE_*) exist
  seedtest generate --users 2000 --weeks 8     synthetic data into it
  seedtest demo                                generate + materialize everything (embedded)
  seedtest score --user u-000123               re-score student u-000123 now (JSON)
  seedtest theta --user u-000123               their current stored theta (JSON)
  seedtest theta --user u-000123 --week 2026-03-02  their weekly theta of that week
  seedtest report --week 2026-03-02            that week's reports (Dagster run)
  seedtest report --week 2026-03-02 --user u-000123 --format pdf --dry-run
  seedtest serve --port 8000                   the theta-update HTTP API (JWKS_URL, JWT_*)

exit codes:
  0  done (also `score` with nothing to score: {"status": "noop", ...})
  1  failed: the report run failed (its message is printed), a downgrade refused because
     it would drop data, or an unexpected error
  2  usage or configuration: bad option, a week that is not a Monday, bad REPORT_FORMAT,
     a malformed SOURCE_* variable
  3  not found: no such student or organisation, or no stored theta
  4  warehouse not ready: missing, not migrated, at another revision, or unreachable; or
     a source relation (SOURCE_*) missing or lacking a column we read

environment: DATABASE_URL (default: SQLite file $SEEDTEST_HOME/warehouse.db), SEEDTEST_HOME
(default ./.seedtest), DAGSTER_HOME (default for `report`: $SEEDTEST_HOME/dagster),
REPORT_FORMAT (pdf | html; unset: both), MAX_USERS (report cap, default 1000); for `serve`:
JWKS_URL, JWT_AUD, JWT_ISS, LOCAL_DEV, ENABLE_IRT_ONLINE_UPDATE (docs/api.md).
Errors are one line on stderr; add --debug for the traceback.
"""


class CliError(Exception):
    """A problem the user can fix: printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- argument types
def _parse_id(kind: str, value: str) -> str:
    """The one place ids from the command line are checked: the product's own text, taken as
    typed (``U123``, ``test-user-123``, a UUID), refused when no one could mean it
    (:func:`seedtest_assets.core.ids.id_problem`)."""
    problem = id_problem(value)
    if problem is not None:
        article = "an" if kind[0] in "aeiou" else "a"
        raise argparse.ArgumentTypeError(f"not {article} {kind} id ({problem}): {shown(value)}")
    return value


def _user_id(value: str) -> str:
    return _parse_id("student", value)


def _org_id(value: str) -> str:
    return _parse_id("organisation", value)


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from exc


def _monday(value: str) -> date:
    """A week, keyed by its Monday (as the weekly partitions and the original's --week)."""
    day = _parse_date(value)
    if day.weekday() != 0:
        monday = day - timedelta(days=day.weekday())
        raise argparse.ArgumentTypeError(
            f"{value} is a {day:%A}: weeks are keyed by their Monday (that week: {monday})"
        )
    return day


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from exc
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {n}")
    return n


# --------------------------------------------------------------------------- helpers
def _warehouse_url() -> str:
    """``DATABASE_URL`` or the embedded file, without creating ``SEEDTEST_HOME``."""
    return settings.database_url(create_home=False)


def _ready_engine():
    """An engine on the existing, migrated warehouse (else one-line error, exit 4)."""
    from seedtest_assets.core.warehouse.ready import ready_engine

    return ready_engine(_warehouse_url())


def _require(engine, column: str, ids: Sequence[str], noun: tuple[str, str]) -> None:
    """Exit 3 unless every id is a value of ``users.<column>`` (``user_id`` or ``org_id``).

    ``noun``: how to name one and several missing ids ("student", "students").
    """
    from seedtest_assets.core.source import users
    from seedtest_assets.core.warehouse.ready import describe

    wanted = sorted(set(ids))
    if not wanted:
        return
    with engine.connect() as conn:
        found = users.existing(conn, column, wanted)
    missing = [i for i in wanted if i not in found]
    if missing:
        listed = ", ".join(str(i) for i in missing)
        name = noun[0] if len(missing) == 1 else noun[1]
        raise CliError(
            f"no {name} {listed} in the warehouse {describe(_warehouse_url())}", EXIT_NOT_FOUND
        )


def _require_students(engine, user_ids: Sequence[str]) -> None:
    _require(engine, "user_id", user_ids, ("student", "students"))


def _require_orgs(engine, org_ids: Sequence[str]) -> None:
    """Organisations that have students (``users.org_id``): else a typo selects nobody."""
    noun = ("student in organisation", "students in organisations")
    _require(engine, "org_id", org_ids, noun)


# --------------------------------------------------------------------------- commands
def _migration_done(url: str, result) -> None:
    """What a migration did: its notes (stderr), then where the warehouse is now (stdout)."""
    from seedtest_assets.core.warehouse.ready import describe

    for note in result.notes:
        print(f"seedtest: note: {note}", file=sys.stderr)
    now = result.after or "base (no seedtest tables)"
    was = f" (was {result.before or 'not migrated'})" if result.before != result.after else ""
    print(f"warehouse {describe(url)} at revision {now}{was}")


def _waiting(message: str) -> None:
    print(f"seedtest: {message}", file=sys.stderr, flush=True)


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from seedtest_assets.core.warehouse.migrate import migrate

    url = settings.database_url()
    _migration_done(url, migrate(url, args.revision, on_wait=_waiting))
    return EXIT_OK


def _cmd_db_downgrade(args: argparse.Namespace) -> int:
    from seedtest_assets.core.warehouse.migrate import migrate
    from seedtest_assets.core.warehouse.ready import SETTINGS_HINT, WarehouseNotReady, sqlite_file

    url = _warehouse_url()  # never creates SEEDTEST_HOME or a warehouse file
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise WarehouseNotReady(
            f"no warehouse at {path} (SQLite file missing): nothing to downgrade; {SETTINGS_HINT}"
        )
    result = migrate(
        url,
        args.revision,
        downgrade=True,
        allow_data_loss=args.allow_data_loss,
        on_wait=_waiting,
    )
    _migration_done(url, result)
    return EXIT_OK


def _cmd_generate(args: argparse.Namespace) -> int:
    from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
    from seedtest_assets.core.warehouse import make_engine, upgrade

    url = settings.database_url()
    upgrade(url)
    cfg = SyntheticConfig(
        n_users=args.users,
        weeks=args.weeks,
        seed=args.seed,
        start=args.start,
        n_items=args.items,
    )
    pop = generate(cfg)
    engine = make_engine(url)
    counts = load(engine, pop, replace=True)
    engine.dispose()
    print(f"generated into {settings.redact_url(url)} (period {pop.start} .. {pop.end}):")
    for table, n in counts.items():
        print(f"  {table:<20} {n:>12,}")
    return EXIT_OK


def _cmd_source_check(args: argparse.Namespace) -> int:
    """Check the source relations (``SOURCE_*``) against the database: each one, its column
    renames and ``ok``; else the start check's one-line error (exit 4)."""
    from seedtest_assets.core.source.relations import SourceRelations, check_source
    from seedtest_assets.core.warehouse import make_engine
    from seedtest_assets.core.warehouse.ready import (
        SETTINGS_HINT,
        WarehouseNotReady,
        describe,
        sqlite_file,
    )

    relations = SourceRelations.from_env()  # a malformed variable: SettingsError, exit 2
    url = _warehouse_url()
    path = sqlite_file(url)
    if path is not None and not path.is_file():  # read-only: never create the file
        raise WarehouseNotReady(f"no warehouse at {path} (SQLite file missing); {SETTINGS_HINT}")
    engine = make_engine(url)
    try:
        check_source(engine, relations)
    finally:
        engine.dispose()
    print(f"source relations in {describe(url)}:")
    for r in relations.relations:
        print(f"  {r.describe()}  ok")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from seedtest_assets.demo import run_demo

    return run_demo(users=args.users, weeks=args.weeks, seed=args.seed, debug=args.debug)


def _cmd_score(args: argparse.Namespace) -> int:
    """Re-score one student now (the original ``POST /analysis/irt/update-theta``)."""
    from seedtest_assets.core.mirt_ability.online import DEFAULT_LOOKBACK_DAYS, update_theta

    engine = _ready_engine()
    try:
        _require_students(engine, [args.user])
        update = update_theta(
            engine,
            [args.user],
            now=settings.utc_now(),
            model=args.model,
            lookback_days=args.lookback_days or DEFAULT_LOOKBACK_DAYS,
            source="on_demand",
        )
    finally:
        engine.dispose()
    print(json.dumps(update.results[0].to_api(), ensure_ascii=False))
    return EXIT_OK


def _cmd_theta(args: argparse.Namespace) -> int:
    """Print a student's stored theta (read-only)."""
    from seedtest_assets.core.mirt_ability.read import stored_theta

    engine = _ready_engine()
    try:
        _require_students(engine, [args.user])
        row = stored_theta(engine, args.user, args.week)
    finally:
        engine.dispose()
    if row is None:
        if args.week is None:
            msg = (
                f"student {args.user} has no theta yet (no mirt_ability row): the weekly "
                f"batch has not scored them; `seedtest score --user {shlex.quote(args.user)}` "
                "scores them now"
            )
        else:
            msg = (
                f"student {args.user} has no weekly theta for the week {args.week} (the weekly "
                f"batch did not score them that week); without --week: their current theta"
            )
        raise CliError(msg, EXIT_NOT_FOUND)
    print(json.dumps(row.to_api(), ensure_ascii=False))
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run the θ-update service (uvicorn) until interrupted."""
    import shutil
    import tempfile

    from seedtest_assets.api.config import ApiConfig, ApiConfigError

    try:
        config = ApiConfig.from_env()
        config.check(args.host)
    except ApiConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    engine = _ready_engine()  # exit 4 now, not a failing worker later
    engine.dispose()
    import uvicorn

    # Several workers are several processes: their metrics meet in one folder (api/metrics.py).
    multiproc = None
    if args.workers > 1 and not settings.env("PROMETHEUS_MULTIPROC_DIR"):
        multiproc = tempfile.mkdtemp(prefix="seedtest-metrics-")
        settings.set_env("PROMETHEUS_MULTIPROC_DIR", multiproc)
    import polars as pl

    # Set by seedtest_assets.console before polars loaded (workers inherit it).
    threads = pl.thread_pool_size()
    print(
        f"seedtest serve: http://{args.host}:{args.port} ({args.workers} worker(s)); "
        f"tokens {'NOT verified (LOCAL_DEV)' if config.local_dev else 'verified against JWKS'}"
        f"; polars on {threads} thread(s) per worker (POLARS_MAX_THREADS)",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(
            "seedtest_assets.api.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            # Request lines name the path and status only: no header (no token) is logged.
            access_log=args.access_log,
        )
    finally:
        if multiproc:
            shutil.rmtree(multiproc, ignore_errors=True)
    return EXIT_OK


def _report_formats(choice: str | None) -> tuple[str, ...]:
    """``--format`` wins; else ``REPORT_FORMAT`` (pdf | html); unset: both."""
    from seedtest_assets.launch import formats_from_env

    if choice:
        return (choice,)
    try:
        return formats_from_env()
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _check_week_partition(week: date) -> None:
    from seedtest_assets.defs.partitions import weekly

    if not weekly.has_partition_key(week.isoformat()):
        keys = weekly.get_partition_keys()
        span = f"{keys[0]} .. {keys[-1]}" if keys else "none"
        raise CliError(
            f"no weekly partition {week}: the weeks are {span} (from "
            "SEEDTEST_PARTITIONS_START, or the demo data's first week, to this week)",
            EXIT_USAGE,
        )


def _cmd_report(args: argparse.Namespace) -> int:
    """Render a week's reports through Dagster (``report_artifacts_job``) and list the files."""
    from seedtest_assets.launch import ReportRequest, launch_week

    formats = _report_formats(args.format)
    request = ReportRequest(
        week=args.week,
        user_ids=tuple(dict.fromkeys(args.users or ())),
        org_ids=tuple(dict.fromkeys(args.orgs or ())),
        max_users=args.max_users,
        formats=formats,
        lang=args.lang,
        dry_run=args.dry_run,
    )
    _check_week_partition(request.week)
    engine = _ready_engine()
    try:
        _require_students(engine, request.user_ids)
        _require_orgs(engine, request.org_ids)
        launch = launch_week(
            engine,
            request,
            tags={"seedtest/launched_by": "seedtest report"},
            # --debug: Dagster's own console log (step failures with their stack traces).
            console_log_level="WARNING" if args.debug else "CRITICAL",
        )
    finally:
        engine.dispose()
    for location in launch.files:
        print(location)
    err = sys.stderr
    if not args.debug:  # with --debug Dagster's console logger printed them already
        for level, message in launch.messages:
            print(f"{level}: {message}", file=err)
    files = _count(len(launch.files), "+".join(request.formats) + " file")
    students = _count(launch.students, "student")
    print(f"run {launch.run_id} (Dagster instance {launch.dagster_home})", file=err)
    if launch.dry_run:
        summary = (
            f"dry run, week {launch.week}: {students}, {files} rendered, nothing stored "
            "(the paths above are where they would go)"
        )
    else:
        summary = (
            f"week {launch.week}: {students}, {files}, {launch.bytes / 1024:.0f} KiB, "
            f"stored in {launch.store}"
        )
    cut = launch.metadata.get("students_cut_by_max_users")
    if cut:
        summary += f"; {_count(int(cut), 'more student')} cut by --max-users / MAX_USERS"
    if launch.failed_checks:
        summary += f"; asset checks not passed: {', '.join(launch.failed_checks)}"
    if launch.success:
        print(summary, file=err)
        return EXIT_OK
    print(f"FAILED {summary}", file=err)
    raise CliError(f"report run {launch.run_id} failed: {launch.failure}", EXIT_FAILED)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --------------------------------------------------------------------------- parser
class _Formatter(argparse.HelpFormatter):
    """Wraps one-paragraph descriptions; keeps texts laid out by hand (the epilog) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too (as every other error): ``seedtest: error: ...`` with
    where to find the usage, exit 2 (argparse's default prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"seedtest: error: {message} (`{self.prog} --help` for usage)\n")


def _debug_parent() -> argparse.ArgumentParser:
    """``--debug`` after a subcommand too (SUPPRESS: never overrides the global flag)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on an error, also print the traceback",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests)."""
    fmt = _Formatter
    common = {"parents": [_debug_parent()], "formatter_class": fmt}
    p = _Parser(prog="seedtest", description=DESCRIPTION, epilog=EPILOG, formatter_class=fmt)
    p.add_argument("--debug", action="store_true", help="on an error, also print the traceback")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="warehouse schema (migrations)", **common)
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    up = dbsub.add_parser(
        "upgrade",
        help="create or migrate the warehouse (DATABASE_URL, else the embedded SQLite file)",
        description="Apply the Alembic migrations to the warehouse: DATABASE_URL, else "
        "$SEEDTEST_HOME/warehouse.db (created with its folder if missing).",
        **common,
    )
    up.add_argument(
        "revision",
        nargs="?",
        default="head",
        help="the revision to migrate to (default: %(default)s, the newest)",
    )
    up.set_defaults(func=_cmd_db_upgrade)
    down = dbsub.add_parser(
        "downgrade",
        help="revert migrations (refuses to drop a table or column that holds data)",
        description="Revert the Alembic migrations of the warehouse down to REVISION, in one "
        "transaction under the migration lock: a failure changes nothing. A step that would "
        "drop a table or column holding data refuses and says which (exit 1) unless "
        "--allow-data-loss is given.",
        **common,
    )
    down.add_argument(
        "revision",
        help="the revision to go down to: an id (0004), a relative step (-1), or base",
    )
    down.add_argument(
        "--allow-data-loss",
        action="store_true",
        help="drop tables and columns even if they hold data (back it up first)",
    )
    down.set_defaults(func=_cmd_db_downgrade)

    source = sub.add_parser("source", help="the source relations (SOURCE_*)", **common)
    srcsub = source.add_subparsers(dest="source_command", required=True, metavar="SOURCE_COMMAND")
    check = srcsub.add_parser(
        "check",
        help="check that every source relation exists with every column we read",
        description="The start check every run does: each source relation (SOURCE_ATTEMPTS, "
        "SOURCE_USERS, ...; default: our own tables) exists in the warehouse database as a "
        "table or view and has every column we read (renamed by SOURCE_*_COLUMNS). Prints "
        "each relation with its renames and ok; else one line naming what is missing and "
        "the variable to fix (exit 4).",
        **common,
    )
    check.set_defaults(func=_cmd_source_check)

    gen = sub.add_parser(
        "generate",
        help="synthetic exam data with ground truth (replaces the source tables)",
        description="Generate synthetic students, items and attempts with their ground truth "
        "and load them into the warehouse (migrating it first); replaces the source tables.",
        **common,
    )
    gen.add_argument(
        "--users",
        type=_positive_int,
        default=2000,
        help="students to generate (default: %(default)s)",
    )
    gen.add_argument(
        "--weeks", type=_positive_int, default=8, help="weeks of activity (default: %(default)s)"
    )
    gen.add_argument(
        "--seed", type=int, default=7, help="random seed, for reproducible data (default: 7)"
    )
    gen.add_argument(
        "--items",
        type=int,
        default=None,
        help="items in the bank (default: scales with --users)",
    )
    gen.add_argument(
        "--start",
        type=_parse_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="first Monday (default: the Monday WEEKS weeks before this week's)",
    )
    gen.set_defaults(func=_cmd_generate)

    demo = sub.add_parser(
        "demo",
        help="generate data and materialize the whole asset graph (embedded SQLite)",
        description="Generate synthetic data into the embedded SQLite warehouse under "
        "SEEDTEST_HOME, materialize every asset through Dagster ($SEEDTEST_HOME/dagster) and "
        "print a summary.",
        **common,
    )
    demo.add_argument(
        "--users",
        type=_positive_int,
        default=2000,
        help="students to generate (default: %(default)s)",
    )
    demo.add_argument(
        "--weeks", type=_positive_int, default=8, help="weeks of activity (default: %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    demo.set_defaults(func=_cmd_demo)

    score = sub.add_parser(
        "score",
        help="re-score one student now with the latest item parameters (JSON)",
        description="Re-score one student now with the latest calibrated item parameters and "
        "store the result (a mirt_ability row, source on_demand). Prints JSON {status: ok, "
        "user_id, theta, se, model, version, updated_at}, or {status: noop, user_id, "
        "message} (exit 0) when the student has nothing to score. A student who is not in "
        "users is an error (exit 3).",
        **common,
    )
    score.add_argument(
        "--user", type=_user_id, required=True, metavar="USER_ID", help="the student's user_id"
    )
    score.add_argument(
        "--lookback-days",
        type=_positive_int,
        default=None,
        metavar="DAYS",
        help="days of attempts to score (default: 84, the weekly batch's window)",
    )
    score.add_argument(
        "--model", default="2PL", help="IRT model of the item parameters (default: %(default)s)"
    )
    score.set_defaults(func=_cmd_score)

    theta = sub.add_parser(
        "theta",
        help="a student's stored theta (read-only, JSON)",
        description="Print a student's stored theta as JSON {status: ok, user_id, theta, se, "
        "model, version, week_start, source, updated_at}: with --week the weekly batch's theta "
        "of that week, else the student's newest row (any source). Reads only. Unknown "
        "student or no row: exit 3.",
        **common,
    )
    theta.add_argument(
        "--user", type=_user_id, required=True, metavar="USER_ID", help="the student's user_id"
    )
    theta.add_argument(
        "--week",
        type=_monday,
        default=None,
        metavar="YYYY-MM-DD",
        help="the week's Monday: that week's weekly theta (default: the current theta)",
    )
    theta.set_defaults(func=_cmd_theta)

    serve = sub.add_parser(
        "serve",
        help="run the theta-update HTTP API (POST /analysis/irt/update-theta)",
        description="Serve the theta-update API the exam app calls when a session completes: "
        "POST /analysis/irt/update-theta (also under /api/seedtest), GET "
        "/analysis/irt/theta/USER_ID, /healthz, /readyz, /metrics. Tokens are verified "
        "against JWKS_URL with JWT_AUD and JWT_ISS (LOCAL_DEV=true skips that, loopback only). "
        "Exit 2: configuration refused; 4: warehouse not ready.",
        **common,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=_positive_int, default=1, help="worker processes (default 1)"
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (default info)",
    )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log one line per request",
    )
    serve.set_defaults(func=_cmd_serve)

    report = sub.add_parser(
        "report",
        help="render a week's reports through Dagster and list the files",
        description="Run report_artifacts_job for the week's partition in this process, on "
        "the Dagster instance of DAGSTER_HOME (unset: $SEEDTEST_HOME/dagster), so the run "
        "shows in the UI. Without --user: the students active in the week (as the weekly "
        "schedule); named students get a report even if they did not practise that week. "
        "--user and --org narrow each other. Prints each stored file's path (local store) "
        "or URL (S3) on stdout, one per line, then the run id and a summary on stderr.",
        **common,
    )
    report.add_argument(
        "--week",
        type=_monday,
        required=True,
        metavar="YYYY-MM-DD",
        help="the report week's Monday (the weekly partition key)",
    )
    report.add_argument(
        "--user",
        dest="users",
        type=_user_id,
        action="append",
        metavar="USER_ID",
        help="only this student (repeatable); named students are reported even if inactive",
    )
    report.add_argument(
        "--org",
        dest="orgs",
        type=_org_id,
        action="append",
        metavar="ORG_ID",
        help="only students of this organisation (repeatable)",
    )
    report.add_argument(
        "--max-users",
        type=_positive_int,
        default=None,
        metavar="N",
        help="at most N students, lowest ids first (default: env MAX_USERS, else 1000)",
    )
    report.add_argument(
        "--format",
        choices=("pdf", "html"),
        default=None,
        help="only this format (default: env REPORT_FORMAT, pdf or html; unset: both)",
    )
    report.add_argument(
        "--lang",
        choices=("ko", "en"),
        default="ko",
        help="report labels (default: %(default)s)",
    )
    report.add_argument(
        "--dry-run",
        action="store_true",
        help="render only: store no file, write no row; print where the files would go",
    )
    report.set_defaults(func=_cmd_report)
    return p


# --------------------------------------------------------------------------- errors
def _error(exc: BaseException) -> tuple[int, str]:
    """(exit code, one line) for an exception escaping a command."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from seedtest_assets.core.warehouse.ready import (
        WarehouseNotReady,
        describe,
        one_line,
        sqlite_file,
    )

    if isinstance(exc, CliError):
        return exc.code, str(exc)
    if isinstance(exc, WarehouseNotReady):
        return EXIT_WAREHOUSE, str(exc)
    from seedtest_assets.core.source.relations import SourceNotReady

    if isinstance(exc, SourceNotReady):
        return EXIT_WAREHOUSE, str(exc)
    if isinstance(exc, settings.DatabaseURLError | settings.SettingsError):  # one line each
        return EXIT_USAGE, str(exc)
    from seedtest_assets.core.warehouse.migrate import MigrationRefused

    if isinstance(exc, MigrationRefused):
        return EXIT_FAILED, str(exc)
    try:
        url = _warehouse_url()
    except settings.DatabaseURLError as bad:
        return EXIT_USAGE, str(bad)
    path = sqlite_file(url)
    if path is not None and isinstance(exc, DBAPIError):
        return _sqlite_error(exc, path, url)
    if isinstance(exc, OperationalError):  # cannot connect, or lost the connection
        return EXIT_WAREHOUSE, (
            f"cannot use the warehouse {describe(url)}: {one_line(exc, url)}; check "
            "DATABASE_URL (and that the server is running)"
        )
    if isinstance(exc, DBAPIError):
        return EXIT_FAILED, f"database error on {describe(url)}: {one_line(exc, url)}"
    if _is_config_error(exc):
        return EXIT_USAGE, one_line(exc, url)
    return EXIT_FAILED, (
        f"{type(exc).__name__}: {one_line(exc, url)} (run with --debug for the traceback)"
    )


def _sqlite_error(exc: BaseException, path, url: str) -> tuple[int, str]:
    """A SQLite warehouse's error: say which file, what is wrong with it, and what to do."""
    from seedtest_assets.core.warehouse.ready import SETTINGS_HINT, one_line

    text = one_line(exc, url)
    if not path.parent.is_dir():
        return EXIT_WAREHOUSE, (
            f"cannot open the warehouse SQLite file {path}: its folder {path.parent} does not "
            f"exist; create it, or {SETTINGS_HINT}"
        )
    if "file is not a database" in text:
        return EXIT_WAREHOUSE, (
            f"{path} is not a SQLite database (the warehouse file): move it aside, or "
            f"{SETTINGS_HINT}"
        )
    if "unable to open" in text or "readonly" in text or "locked" in text:
        return EXIT_WAREHOUSE, (
            f"cannot use the warehouse SQLite file {path}: {text}; check that it is writable "
            f"and not held by another process, or {SETTINGS_HINT}"
        )
    return EXIT_FAILED, f"database error on the warehouse SQLite file {path}: {text}"


def _is_config_error(exc: BaseException) -> bool:
    """A bad DAGSTER_HOME, or an Alembic revision that does not exist."""
    from seedtest_assets.launch import LaunchConfigError

    if isinstance(exc, LaunchConfigError):
        return True
    if "alembic" in sys.modules:
        from alembic.util import CommandError

        if isinstance(exc, CommandError):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``seedtest`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    # An unreachable host fails after 10 s, not libpq's 130 (PGCONNECT_TIMEOUT still wins).
    settings.set_env("PGCONNECT_TIMEOUT", "10", default_only=True)
    # The URL as given (the demo removes it from the environment): its credentials, and
    # PGPASSWORD's, are scrubbed from whatever an error prints.
    given_url = settings.env("DATABASE_URL")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("seedtest: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        try:
            code, message = _error(exc)
        except Exception:  # never let the error report itself fail
            code, message = EXIT_FAILED, f"{type(exc).__name__} (run with --debug for details)"
        if args.debug:
            print(scrub(traceback.format_exc(), given_url), end="", file=sys.stderr)
        print(f"seedtest: error: {scrub(message, given_url)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
