"""The ``seedtest`` command line: warehouse migrations, synthetic data, the demo, re-scoring.

Examples::

    seedtest db upgrade
    seedtest generate --users 2000 --weeks 8 --seed 7
    seedtest demo
    seedtest score --user 123 [--lookback-days 84]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from seedtest_assets import settings


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from seedtest_assets.warehouse import upgrade

    url = settings.database_url()
    rev = upgrade(url, args.revision)
    print(f"warehouse {settings.redact_url(url)} at revision {rev}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from seedtest_assets.synthetic import SyntheticConfig, generate, load
    from seedtest_assets.warehouse import make_engine, upgrade

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
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from seedtest_assets.demo import run_demo

    return run_demo(users=args.users, weeks=args.weeks, seed=args.seed)


def _cmd_score(args: argparse.Namespace) -> int:
    """Re-score one student now (the original ``POST /analysis/irt/update-theta``)."""
    from seedtest_assets.mirt_ability.online import DEFAULT_LOOKBACK_DAYS, update_theta
    from seedtest_assets.warehouse import make_engine

    engine = make_engine(settings.database_url())
    try:
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
    return 0


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from exc


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from exc
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests)."""
    p = argparse.ArgumentParser(prog="seedtest", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="warehouse schema")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations (DATABASE_URL or embedded SQLite)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_cmd_db_upgrade)

    gen = sub.add_parser("generate", help="synthetic exam data with ground truth")
    gen.add_argument("--users", type=int, default=2000)
    gen.add_argument("--weeks", type=int, default=8)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--items", type=int, default=None, help="default scales with --users")
    gen.add_argument(
        "--start",
        type=_parse_date,
        default=None,
        help="first Monday (default: the Monday WEEKS weeks before this week's)",
    )
    gen.set_defaults(func=_cmd_generate)

    demo = sub.add_parser("demo", help="generate data and materialize the whole asset graph")
    demo.add_argument("--users", type=int, default=2000)
    demo.add_argument("--weeks", type=int, default=8)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=_cmd_demo)

    score = sub.add_parser(
        "score",
        help="re-score one student now with the latest item parameters; prints JSON "
        "{status: ok, user_id, theta, se, model, version, updated_at} or {status: noop, message}",
    )
    score.add_argument("--user", type=int, required=True, help="the student's user_id")
    score.add_argument(
        "--lookback-days",
        type=_positive_int,
        default=None,
        help="days of attempts to score (default 84, the weekly batch's window)",
    )
    score.add_argument("--model", default="2PL", help="IRT model of the item parameters")
    score.set_defaults(func=_cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``seedtest`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
