"""What the ``new_attempts`` sensor reads on each tick (SQLAlchemy Core, no Dagster).

Two keyset cursors, both stored by Dagster with every tick as one JSON document
(:class:`WatchCursor`):

- ``(attempted_at, attempt_id)``: the last attempt handled, in ``(attempted_at, id)`` order.
  A tick reads at most ``limit`` attempts after it, in that order, three narrow columns
  (id, user, time), and never attempts made less than ``lag`` ago (:func:`attempts_lag`,
  ``SEEDTEST_ATTEMPTS_LAG_SECONDS``, default 2 minutes).
- ``(completed_at, session_id)``: the last ``exam_sessions`` row whose completion was handled.
  A tick reads at most ``limit`` sessions completed after it, in that order (ties by id as
  text), and never sessions completed less than ``settle`` ago.

Why time, not id: the product's attempts come from a view whose ids are not in commit order,
so "ids above the highest seen" misses a row that arrives late with a lower id. Keyed on
``(attempted_at, id)`` the order of ids no longer matters. The assumption is now about time:
a row is committed within ``lag`` of its ``attempted_at``. Rows committed that way are always
seen, whatever their id; a row committed later than that, with an ``attempted_at`` behind the
cursor (an offline client syncing yesterday's answers, a writer whose clock runs behind), is
not: no keyset cursor can see a row inserted behind it. The lag makes that window explicit
and configurable; the daily features schedule and the weekly batch still cover such rows, so
they are late, not lost. The same holds for sessions and ``settle``.

Both reads are index range scans whose cost depends on ``limit``, not on how many rows wait
(the sensor must stay far below Dagster's 60 s evaluation timeout).

Rows the attempt cursor cannot order are outside its scan (they are never read, so they can
neither stall nor fail a tick): a NULL ``attempted_at`` and, on SQLite, which stores any value
in any column, a non-integer ``id`` or an ``attempted_at`` that is not timestamp text of the
form ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (numbers, undatable text, the ``T`` form, zone
suffixes: SQLite compares text as text, and only that form sorts in time order, see
:func:`~seedtest_assets.core.source.attempts.read_after`). The ``attempts`` source check
reports NULL, undatable, numeric and non-integer-id rows; every dated row is still read by its
day's features run. Rows the scan reads but cannot fully use (text in ``user_id``) never fail
a tick: they are listed in ``AttemptBatch.bad`` (the sensor logs them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine

from seedtest_assets.core import settings
from seedtest_assets.core.attempts.validate import parse_attempts
from seedtest_assets.core.source import attempts, sessions

#: Sessions completed more recently than this wait for the next tick (commit-order slack).
DEFAULT_SETTLE = timedelta(seconds=2)
#: Attempts made more recently than this wait for the next tick (``attempts_lag``).
DEFAULT_LAG_SECONDS = 120
#: Longest lag accepted (a day: beyond that the daily schedule is the sensor).
MAX_LAG_SECONDS = 86_400
CURSOR_VERSION = 2
#: Malformed rows listed per batch (all are counted).
MAX_BAD_REPORTED = 20


def attempts_lag() -> timedelta:
    """How old an attempt must be before the sensor reads it: ``SEEDTEST_ATTEMPTS_LAG_SECONDS``
    (1 to 86,400 s, default 120 s). An attempt committed later than this after its
    ``attempted_at`` falls behind the cursor (module doc); a longer lag only delays the
    features and student registration by that much.

    Raises:
        SettingsError: not an integer in range.
    """
    return timedelta(
        seconds=settings.positive_int(
            "SEEDTEST_ATTEMPTS_LAG_SECONDS", DEFAULT_LAG_SECONDS, maximum=MAX_LAG_SECONDS
        )
    )


def _naive_utc(raw: Any, name: str) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{name} must be an ISO-8601 text or null, got {raw!r}")
    at = datetime.fromisoformat(raw)
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _integer(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"{name} must be an integer, got {raw!r}")
    return raw


def _session_id(raw: Any) -> str:
    """A session id as the cursor keeps it: text (an integer is accepted and turned into
    its decimal text, as the database's ``CAST(… AS TEXT)`` does)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    raise ValueError(f"session_id must be text or an integer, got {raw!r}")


@dataclass(frozen=True)
class WatchCursor:
    """The sensor's durable position.

    Attributes:
        attempted_at: ``attempted_at`` (naive UTC) of the last attempt handled; ``None``: none
            yet (the next read starts at the first row).
        attempt_id: id of that attempt (ties on ``attempted_at`` are ordered by id).
        completed_at: ``completed_at`` (naive UTC) of the last session handled; ``None``: none.
        session_id: id of that session, as text (ties on ``completed_at`` are ordered by id
            as text; ``""`` sorts before every id).
        v1_after_id: set only by a version-1 cursor read by :meth:`from_json` and not yet used:
            the highest attempt id that cursor had handled. The next read resolves it
            (:func:`read_new_attempts`) and the cursor saved after it is a plain version 2.
    """

    attempted_at: datetime | None = None
    attempt_id: int = 0
    completed_at: datetime | None = None
    session_id: str = ""
    v1_after_id: int | None = None

    def to_json(self) -> str:
        """``{"v": 2, "attempted_at": ISO-8601 | null, "attempt_id": int,
        "completed_at": ISO-8601 | null, "session_id": str}`` (plus ``"v1_after_id": int``
        for an unresolved version-1 cursor)."""
        doc: dict[str, Any] = {
            "v": CURSOR_VERSION,
            "attempted_at": self.attempted_at.isoformat() if self.attempted_at else None,
            "attempt_id": self.attempt_id,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "session_id": self.session_id,
        }
        if self.v1_after_id is not None:
            doc["v1_after_id"] = self.v1_after_id
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> WatchCursor:
        """Parse :meth:`to_json` output, or a version-1 cursor (an operator may also type
        either in the UI). Missing keys take their defaults; an ISO time with an offset is
        converted to naive UTC; a ``session_id`` may be typed as an integer.

        A version-1 cursor ``{"v": 1, "attempt_id": N, "completed_at": …, "session_id": …}``
        said "every attempt with ``id <= N`` is handled". It converts without losing a row:

        - attempts: the next read starts at the earliest ``attempted_at`` T of the rows with
          ``id > N`` and reads, at T, only ids above N (:attr:`v1_after_id`, resolved against
          the table by :func:`read_new_attempts`). Every unhandled row is after that point;
          rows with ``id <= N`` attempted after T are read again (at worst a features day
          recomputed once more). No row with ``id > N``: the read starts like a new sensor,
          at "now - lag" (:func:`start_cursor`).
        - sessions: ``(completed_at, "")``: the sessions completed at exactly that instant are
          read again (version 1 ordered their ids as numbers, version 2 as text, so which of
          them came "after" the old id is not the same; re-scoring a student is harmless).

        Raises:
            ValueError: not a cursor of version 1 or 2.
        """
        try:
            doc = json.loads(raw)
            version = doc.get("v")
            if version == 1:
                done = _naive_utc(doc.get("completed_at"), "completed_at")
                return cls(
                    completed_at=done,
                    session_id="",
                    v1_after_id=_integer(doc.get("attempt_id", 0), "attempt_id"),
                )
            if version != CURSOR_VERSION:
                raise ValueError(f"cursor version {version!r}, expected {CURSOR_VERSION} (or 1)")
            legacy = doc.get("v1_after_id")
            return cls(
                attempted_at=_naive_utc(doc.get("attempted_at"), "attempted_at"),
                attempt_id=_integer(doc.get("attempt_id", 0), "attempt_id"),
                completed_at=_naive_utc(doc.get("completed_at"), "completed_at"),
                session_id=_session_id(doc.get("session_id", "")),
                v1_after_id=None if legacy is None else _integer(legacy, "v1_after_id"),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a new_attempts cursor ({exc}): {raw[:200]!r}") from exc


@dataclass(frozen=True)
class AttemptBatch:
    """New attempts of one tick, reduced to what the sensor acts on.

    Attributes:
        to_attempted_at, to_id: the attempt cursor after this batch (where it started when
            nothing was read).
        rows: attempts read (including unusable ones: unknown or missing user).
        user_ids: distinct ids of known students (in ``users``) among them, ascending, as the
            database holds them (integers, or text once ids are text).
        days: distinct UTC days of their ``attempted_at``, ascending.
        full: the batch hit its limit, so more attempts are waiting.
        bad_rows: rows with a malformed ``user_id`` (SQLite); skipped for students.
        bad: the first ``MAX_BAD_REPORTED`` of them, ``"id …: column='raw value'"``.
    """

    to_attempted_at: datetime | None
    to_id: int
    rows: int = 0
    user_ids: list[Any] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    full: bool = False
    bad_rows: int = 0
    bad: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SessionBatch:
    """Sessions completed since the session cursor (at most ``limit``).

    Attributes:
        completed_at, session_id: the session cursor after this batch (id as text).
        sessions: sessions read.
        user_ids: their distinct students, ascending (the database's own values).
        full: the batch hit its limit, so more completed sessions are waiting.
    """

    completed_at: datetime | None
    session_id: str
    sessions: int = 0
    user_ids: list[Any] = field(default_factory=list)
    full: bool = False


def _position(
    conn: Connection, cursor: WatchCursor, until: datetime
) -> tuple[datetime | None, int]:
    """Where the attempt scan starts: the cursor's ``(attempted_at, attempt_id)``, or for an
    unresolved version-1 cursor the point :meth:`WatchCursor.from_json` describes."""
    if cursor.v1_after_id is None:
        return cursor.attempted_at, cursor.attempt_id
    first = attempts.first_after_id(conn, cursor.v1_after_id)
    if first is None:
        return attempts.last_position(conn, until)
    return first, cursor.v1_after_id


def _cut(df: pl.DataFrame, limit: int) -> pl.DataFrame:
    """The first ``limit`` rows of ``df`` (``limit + 1`` rows read, parsed), never ending
    inside one instant: when the row after the limit has the last row's ``attempted_at``,
    the rows of that instant wait for the next tick. If the whole batch is one instant, it is
    cut by id instead (copies of the last id wait), and if it is all copies of one
    ``(attempted_at, id)``, the cursor moves past them rather than stall."""
    head = df.head(limit)
    ts, ids = df["attempted_at"], df["id"]
    last_ts, last_id = ts[limit - 1], ids[limit - 1]
    if ts[limit] != last_ts:
        return head
    if ts[0] != last_ts:
        return head.filter(pl.col("attempted_at") != last_ts)
    if ids[limit] == last_id and ids[0] != last_id:
        return head.filter(pl.col("id") != last_id)
    return head


def read_new_attempts(
    engine: Engine, cursor: WatchCursor, until: datetime, limit: int
) -> AttemptBatch:
    """At most ``limit`` attempts after the cursor's ``(attempted_at, attempt_id)`` and
    attempted at or before ``until`` (naive UTC; the sensor passes now - lag), in that
    order: their students and days.

    The batch never ends inside one ``attempted_at`` when more rows wait (:func:`_cut`), so
    the cursor, ``(last attempted_at, highest id read at it)``, passes every row of that
    instant that it read and none that it did not (ties, copies of one id, and on SQLite the
    same instant written as different texts). An instant with more rows than ``limit`` is
    walked through by id (on SQLite re-read in id order: its text forms are read text by
    text, :func:`~seedtest_assets.core.source.attempts.read_at_instant`).
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    with engine.connect() as conn:
        at, after_id = _position(conn, cursor, until)
        # One row more tells whether the limit cuts through an instant.
        df = attempts.read_after(conn, at, after_id, until, limit + 1)
        if df.height == 0:
            return AttemptBatch(to_attempted_at=at, to_id=after_id)
        df = parse_attempts(df)  # SQLite text -> typed; the scan only returns parseable times
        first = df["attempted_at"][0]
        if df.height > limit and df["attempted_at"][limit] == first and attempts.as_text(conn):
            # More rows at one instant than the limit, on SQLite: read that instant by id, so
            # that the cursor (instant, id) passes no text form of it that sorts later.
            df = parse_attempts(
                attempts.read_at_instant(conn, first, after_id if at == first else None, limit + 1)
            )
    full = df.height > limit
    if full:
        df = _cut(df, limit)
    last = df["attempted_at"][-1]
    bad = df.filter(pl.col("_bad_value").is_not_null()).select(
        pl.format("id {}: {}", pl.col("id"), pl.col("_bad_value"))
    )
    known = df.filter(pl.col("user_known") & pl.col("user_id").is_not_null())
    return AttemptBatch(
        to_attempted_at=last,
        # The highest id read at the last instant: on SQLite one instant can be written as
        # several texts, read text by text, so the last row's id need not be the highest.
        to_id=int(df.filter(pl.col("attempted_at") == last)["id"].cast(pl.Int64).max()),  # type: ignore[arg-type]
        rows=df.height,
        user_ids=sorted(known["user_id"].unique().to_list()),
        days=sorted(df["attempted_at"].dt.date().unique().to_list()),
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
        session_id=str(df["session_id"][-1]),
        sessions=df.height,
        user_ids=sorted(df["user_id"].drop_nulls().unique().to_list()),
        full=df.height == limit,
    )


def start_cursor(
    engine: Engine, *, attempts_until: datetime, sessions_until: datetime
) -> WatchCursor:
    """The cursor of "everything up to now is handled": where a newly started sensor begins.

    ``attempts_until`` (now - lag) and ``sessions_until`` (now - settle), naive UTC: the
    cursor is the newest ``(attempted_at, id)`` and ``(completed_at, session_id)`` at or
    before them, so rows made within the lag before the start are still seen by the first
    ticks. History before this point is the batch assets' work (schedules, backfills);
    replaying it is a deliberate operator action (set the sensor's cursor).
    """
    with engine.connect() as conn:
        at, top = attempts.last_position(conn, attempts_until)
        done, sid = sessions.last_completed(conn, sessions_until)
    return WatchCursor(attempted_at=at, attempt_id=top, completed_at=done, session_id=sid)


def features_run_key(day: date, batch: AttemptBatch) -> str:
    """Run key of the features run for ``day`` requested by ``batch``:
    ``features_topic_daily:<day>:<attempted_at of the batch's cursor>:<its id>``.

    The same batch (a repeated tick) gives the same key, so Dagster launches it once; a later
    batch with more attempts for that day gives a new key (its cursor is further on, in
    ``(attempted_at, id)`` order; the id alone is not, ids are not in time order) and re-runs
    the day.
    """
    done = batch.to_attempted_at.isoformat() if batch.to_attempted_at else "none"
    return f"features_topic_daily:{day.isoformat()}:{done}:{batch.to_id}"


def rescore_run_key(batch: SessionBatch) -> str:
    """Run key of the online update for the sessions up to ``batch``'s cursor."""
    done = batch.completed_at.isoformat() if batch.completed_at else "none"
    return f"student_rescore:{done}:{batch.session_id}"


def partition_days(days: Sequence[date], first: date, last: date | None) -> list[date]:
    """The days that are daily partitions (``first`` .. ``last``; ``None``: no day yet)."""
    if last is None:
        return []
    return [d for d in days if first <= d <= last]
