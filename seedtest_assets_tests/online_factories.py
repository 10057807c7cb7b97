"""Hand-made data for the attempts sensor and the online ability update.

Three items with known 2PL parameters (``ITEM_PARAMS``, stored as a calibrated week), the
reference rows of :func:`factories.seed_reference` (users 1-3), and helpers for sessions and
attempts placed relative to a chosen ``now``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import polars as pl

from seedtest_assets.core.warehouse import insert_frame, make_engine, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.factories import attempts_frame, insert_attempts, seed_reference

#: item_id -> (a, d); c = 0 (2PL), b = -d / a.
ITEM_PARAMS = {100: (1.0, 0.0), 101: (1.5, -0.75), 200: (0.8, 0.4)}


def monday_before(day: date) -> date:
    """The Monday of the week before ``day``'s week (a complete, calibrated week)."""
    return day - timedelta(days=day.weekday() + 7)


def store_item_params(url: str, week: date, model: str = "2PL") -> str:
    """Store ``ITEM_PARAMS`` as ``model``'s calibration of ``week``; returns the version."""
    version = f"{model}@{week.isoformat()}"
    rows = pl.DataFrame(
        {
            "week_start": [week] * len(ITEM_PARAMS),
            "model": [model] * len(ITEM_PARAMS),
            "item_id": list(ITEM_PARAMS),
            "params": [
                json.dumps({"a": a, "b": -d / a, "c": 0.0, "d": d, "flagged": False})
                for a, d in ITEM_PARAMS.values()
            ],
            "version": [version] * len(ITEM_PARAMS),
            "fitted_at": [datetime.combine(week + timedelta(days=7), datetime.min.time())]
            * len(ITEM_PARAMS),
        }
    )
    engine = make_engine(url)
    with transaction(engine) as conn:
        insert_frame(conn, s.mirt_item_params, rows)
    engine.dispose()
    return version


def insert_sessions(url: str, rows: list[dict]) -> None:
    """``exam_sessions`` rows: session_id, user_id, started_at, completed_at (may be None).
    Ids are text; numbers are taken as their text (``10`` is session ``"10"``)."""
    frame = pl.DataFrame(
        [{**r, "session_id": str(r["session_id"]), "user_id": str(r["user_id"])} for r in rows],
        schema={
            "session_id": pl.String,
            "user_id": pl.String,
            "started_at": pl.Datetime("us"),
            "completed_at": pl.Datetime("us"),
        },
    )
    engine = make_engine(url)
    with transaction(engine) as conn:
        insert_frame(conn, s.exam_sessions, frame)
    engine.dispose()


def seed_scoring(url: str, now: datetime) -> str:
    """Users 1-4 with attempts relative to ``now``, items calibrated the week before.

    - user 1: item 100 right and item 101 wrong, 1 day ago;
    - user 2: item 200 right, 60 days ago (inside 84 days, outside 30);
    - user 3: no attempts; user 4: attempts only on item 999 (unknown: rejected).

    Returns the item-parameter version.
    """
    seed_reference(url, n_users=4)
    yesterday = now - timedelta(days=1)
    insert_attempts(
        url,
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "item_id": 100, "is_correct": True,
                 "attempted_at": yesterday},
                {"id": 2, "user_id": 1, "item_id": 101, "is_correct": False,
                 "attempted_at": yesterday + timedelta(minutes=1)},
                {"id": 3, "user_id": 2, "item_id": 200, "topic_id": 2, "is_correct": True,
                 "attempted_at": now - timedelta(days=60)},
                {"id": 4, "user_id": 4, "item_id": 999, "attempted_at": yesterday},
            ]
        ),
    )  # fmt: skip
    return store_item_params(url, monday_before(now.date()))
