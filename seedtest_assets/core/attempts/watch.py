"""What the ``new_attempts`` sensor reads on each tick (SQLAlchemy Core, no Dagster).

Two keyset cursors, both stored by Dagster with every tick as one JSON document
(:class:`WatchCursor`):

- ``attempt_id``: the highest ``attempts.id`` already handled. A tick reads at most ``limit``
  attempts with a larger id, in id order, and only three narrow columns (id, user, time).
- ``(completed_at, session_id)``: the last ``exam_sessions`` row whose completion was handled.
  A tick reads at most ``limit`` sessions completed after it, in that order, and never
  sessions completed less than ``settle`` ago: a session stamped at time T but committed a
  moment later would otherwise fall behind a cursor that has already moved past T.

Both reads are index range scans whose cost depends on ``limit``, not on how many rows wait
(the sensor must stay far below Dagster's 60 s evaluation timeout). Assumption: the exam
product assigns attempt ids and ``completed_at`` in commit order (give or take ``settle``).
A row committed out of that order is not seen by the sensor; the daily features schedule and
the weekly batch still cover it, so it is late, not lost.

Malformed rows (SQLite holds any value in any column: text in ``user_id``, a number or text in
``attempted_at``) never fail a tick: the batch reads those columns as text, parses them like
validation does, and lists what it could not use in ``AttemptBatch.bad`` (the sensor logs it).
A row whose ``id`` is not an integer is not read at all (the ``attempts`` source check reports
it): no cursor can move past it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.attempts.validate import parse_attempts
from seedtest_assets.core.source import attempts, sessions

#: Sessions completed more recently than this wait for the next tick (commit-order slack).
DEFAULT_SETTLE = timedelta(seconds=2)
CURSOR_VERSION = 1
#: Malformed rows listed per batch (all are counted).
MAX_BAD_REPORTED = 20


@dataclass(frozen=True)
class WatchCursor:
    """The sensor's durable position.

    Attributes:
        attempt_id: highest attempt id handled (0: none yet).
        completed_at: ``completed_at`` (naive UTC) of the last session handled; ``None``: none.
        session_id: id of that session (ties on ``completed_at`` are ordered by id).
    """

    attempt_id: int = 0
    completed_at: datetime | None = None
    session_id: int = 0

    def to_json(self) -> str:
        """``{"v": 1, "attempt_id": int, "completed_at": ISO-8601 | null, "session_id": int}``."""
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "attempt_id": self.attempt_id,
                "completed_at": self.completed_at.isoformat() if self.completed_at else None,
                "session_id": self.session_id,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str) -> WatchCursor:
        """Parse :meth:`to_json` output (an operator may also type it in the UI).

        Raises:
            ValueError: not a cursor of this version.
        """
        try:
            doc = json.loads(raw)
            if doc.get("v") != CURSOR_VERSION:
                raise ValueError(f"cursor version {doc.get('v')!r}, expected {CURSOR_VERSION}")
            done = doc.get("completed_at")
            return cls(
                attempt_id=int(doc.get("attempt_id", 0)),
                completed_at=datetime.fromisoformat(done) if done else None,
                session_id=int(doc.get("session_id", 0)),
            )
        except (AttributeError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a new_attempts cursor: {raw[:200]!r}") from exc


@dataclass(frozen=True)
class AttemptBatch:
    """New attempts of one tick, reduced to what the sensor acts on.

    Attributes:
        to_id: the attempt cursor after this batch (unchanged when nothing was read).
        rows: attempts read (including unusable ones: unknown or missing user, no timestamp).
        user_ids: distinct ids of known students (in ``users``) among them, ascending.
        days: distinct UTC days of their ``attempted_at``, ascending.
        full: the batch hit its limit, so more attempts are waiting.
        bad_rows: rows with a malformed ``user_id`` or ``attempted_at`` (SQLite); skipped for
            students and days, except a numeric timestamp, whose day is requested (its run
            quarantines the row).
        bad: the first ``MAX_BAD_REPORTED`` of them, ``"id …: column='raw value'"``.
    """

    to_id: int
    rows: int = 0
    user_ids: list[int] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    full: bool = False
    bad_rows: int = 0
    bad: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SessionBatch:
    """Sessions completed since the session cursor (at most ``limit``).

    Attributes:
        completed_at, session_id: the session cursor after this batch.
        sessions: sessions read.
        user_ids: their distinct students, ascending.
        full: the batch hit its limit, so more completed sessions are waiting.
    """

    completed_at: datetime | None
    session_id: int
    sessions: int = 0
    user_ids: list[int] = field(default_factory=list)
    full: bool = False


def read_new_attempts(engine: Engine, after_id: int, limit: int) -> AttemptBatch:
    """At most ``limit`` attempts with ``id > after_id`` (id order): their students and days.

    When the limit cuts through copies of one id (the feed may repeat ids), those copies
    are left for the next tick, so no copy is skipped (unless one id has more copies than
    ``limit``: then the cursor moves past it rather than stall).
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    with engine.connect() as conn:
        # One row more tells whether the limit splits copies of an id.
        df = attempts.read_after(conn, after_id, limit + 1)
    if df.height == 0:
        return AttemptBatch(to_id=after_id)
    full = df.height > limit
    if full:
        last, peek = int(df["id"][limit - 1]), int(df["id"][limit])
        df = df.head(limit)
        if peek == last and int(df["id"][0]) != last:
            df = df.filter(pl.col("id") < last)
    df = parse_attempts(df)
    bad = df.filter(pl.col("_bad_value").is_not_null() | pl.col("_numeric_ts")).select(
        pl.format(
            "id {}: {}",
            pl.col("id"),
            pl.coalesce(pl.col("_bad_value"), pl.col("_numeric_detail")),
        )
    )
    known = df.filter(pl.col("user_known") & pl.col("user_id").is_not_null())
    return AttemptBatch(
        to_id=int(df["id"][-1]),
        rows=df.height,
        user_ids=sorted(int(x) for x in known["user_id"].unique()),
        days=sorted(df["attempted_at"].drop_nulls().dt.date().unique().to_list()),
        full=full,
        bad_rows=bad.height,
        bad=bad.to_series().head(MAX_BAD_REPORTED).to_list(),
    )


def read_completed_sessions(
    engine: Engine, cursor: WatchCursor, until: datetime, limit: int
) -> SessionBatch:
    """At most ``limit`` sessions completed after the cursor and at or before ``until``."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    with engine.connect() as conn:
        df = sessions.read_completed_after(
            conn, cursor.completed_at, cursor.session_id, until, limit
        )
    if df.height == 0:
        return SessionBatch(cursor.completed_at, cursor.session_id)
    return SessionBatch(
        completed_at=df["completed_at"][-1],
        session_id=int(df["session_id"][-1]),
        sessions=df.height,
        user_ids=sorted(int(x) for x in df["user_id"].drop_nulls().unique()),
        full=df.height == limit,
    )


def start_cursor(engine: Engine, until: datetime) -> WatchCursor:
    """The cursor of "everything up to now is handled": where a newly started sensor begins.

    History before this point is the batch assets' work (schedules, backfills); replaying it
    is a deliberate operator action (set the sensor's cursor).
    """
    with engine.connect() as conn:
        max_id = attempts.max_id(conn)
        done, sid = sessions.last_completed(conn, until)
    return WatchCursor(attempt_id=int(max_id or 0), completed_at=done, session_id=int(sid or 0))


def features_run_key(day: date, to_id: int) -> str:
    """Run key of the features run for ``day`` requested by the batch ending at ``to_id``.

    The same batch (a repeated tick) gives the same key, so Dagster launches it once; a later
    batch with more attempts for that day gives a new key and re-runs the day.
    """
    return f"features_topic_daily:{day.isoformat()}:{to_id}"


def rescore_run_key(batch: SessionBatch) -> str:
    """Run key of the online update for the sessions up to ``batch``'s cursor."""
    done = batch.completed_at.isoformat() if batch.completed_at else "none"
    return f"student_rescore:{done}:{batch.session_id}"


def partition_days(days: Sequence[date], first: date, last: date | None) -> list[date]:
    """The days that are daily partitions (``first`` .. ``last``; ``None``: no day yet)."""
    if last is None:
        return []
    return [d for d in days if first <= d <= last]
