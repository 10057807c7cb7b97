"""The ``new_attempts`` sensor (Dagster shell over :mod:`seedtest_assets.core.attempts.watch`).

Each tick, with bounded work (at most ``MAX_ATTEMPTS_PER_TICK`` attempts and
``MAX_SESSIONS_PER_TICK`` sessions read, three or four narrow columns each):

1. registers the students of new attempts that are not ``users`` partitions yet (through the
   tick's dynamic-partitions request, or in one bulk call when there are many: see
   ``MAX_REQUESTED_USERS``). A student id that cannot be a partition key
   (:func:`~seedtest_assets.defs.partitions.user_partition_key` refuses it: empty, control
   characters, over 255 characters) is skipped with a warning naming it and counted in the
   tick's summary; the rest of the batch goes on and the cursor advances;
2. requests ``features_topic_daily`` for each *complete* UTC day that received attempts
   (today is not a partition yet: the 01:15 schedule computes it), run key
   ``features_topic_daily:<day>:<attempted_at>:<id>`` of the batch's attempt cursor;
3. requests ONE ``student_rescore_job`` run for the students whose sessions completed since
   the last tick (ids in run config, ADR 0001), run key
   ``student_rescore:<completed_at>:<session_id>`` of the batch's last session; not when
   ``ENABLE_IRT_ONLINE_UPDATE`` is false (the session cursor still advances).

The cursor (JSON, see :class:`~seedtest_assets.core.attempts.watch.WatchCursor`) is saved by
Dagster with the tick's requests: a restart resumes where the last tick ended, and a tick
that is repeated after a crash produces the same run keys, which Dagster launches only once.
A newly started sensor (no cursor) begins at "now - lag" for attempts (attempts are read
only once ``SEEDTEST_ATTEMPTS_LAG_SECONDS`` old, default 2 minutes: see
:mod:`seedtest_assets.core.attempts.watch` for what that lag guarantees) and "now - 2 s" for
sessions.
"""

import time
from datetime import UTC, date, datetime

import dagster as dg

from seedtest_assets.core import settings
from seedtest_assets.core.attempts.watch import (
    DEFAULT_SETTLE,
    MAX_BAD_REPORTED,
    WatchCursor,
    attempts_lag,
    features_run_key,
    partition_days,
    read_completed_sessions,
    read_new_attempts,
    rescore_run_key,
    start_cursor,
)
from seedtest_assets.core.mirt_ability.online import online_updates_enabled
from seedtest_assets.core.settings import utc_now
from seedtest_assets.defs.automation.jobs import features_topic_daily_job, student_rescore_job
from seedtest_assets.defs.partitions import PARTITIONS_START, daily, user_partition_key, users
from seedtest_assets.defs.resources import WarehouseResource

#: Attempts read per tick (3 narrow columns; 100,000 take 0.2 s on PostgreSQL): a backlog of
#: that size drains in one tick, a larger one over the next ticks.
MAX_ATTEMPTS_PER_TICK = 100_000
#: New students up to this many are registered through the tick's dynamic-partitions request
#: (the ADR 0001 idiom, shown on the tick in the UI). The daemon checks every requested key
#: with a query of its own (measured: 11 ms per key on PostgreSQL, so 1,000 new students = 11 s
#: of tick), so more than this are added by the sensor in one bulk call instead.
MAX_REQUESTED_USERS = 100
#: Sessions per tick = at most this many students in one online-update run config.
MAX_SESSIONS_PER_TICK = 5_000
#: Dagster's default; the e2e test and benchmark shorten it through the environment.
INTERVAL_SECONDS = settings.positive_int("SEEDTEST_NEW_ATTEMPTS_INTERVAL", 30)

TRIGGER_TAG = "seedtest/trigger"


def _last_day(now: datetime) -> date | None:
    """The last complete UTC day at ``now`` (our clock, not Dagster's: they agree unless a
    test froze ours)."""
    with dg.partition_loading_context(effective_dt=now.replace(tzinfo=UTC)):
        key = daily.get_last_partition_key()
    return date.fromisoformat(key) if key else None


def _partition_keys(user_ids: list) -> tuple[list[str], list[str]]:
    """The ``users`` partition keys of ``user_ids`` (same order), and for each id that cannot
    be one, the reason (naming the id as a truncated repr: :func:`user_partition_key`)."""
    keys, unusable = [], []
    for user_id in user_ids:
        try:
            keys.append(user_partition_key(user_id))
        except ValueError as exc:
            unusable.append(str(exc))
    return keys, unusable


@dg.sensor(
    name="new_attempts",
    jobs=[features_topic_daily_job, student_rescore_job],
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches the attempts table: registers new students as `users` partitions, "
    "re-runs daily features for complete days that got attempts, and requests one online "
    "ability update per tick for students whose sessions completed "
    "(ENABLE_IRT_ONLINE_UPDATE=false turns that last part off).",
)
def new_attempts(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    started = time.perf_counter()
    engine = warehouse.engine
    now = utc_now()
    attempts_until = now - attempts_lag()
    sessions_until = now - DEFAULT_SETTLE
    if not context.cursor:
        first = start_cursor(engine, attempts_until=attempts_until, sessions_until=sessions_until)
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"sensor started: watching attempts after ({first.attempted_at}, id "
                f"{first.attempt_id}) and sessions completed after {first.completed_at}"
            ),
            cursor=first.to_json(),
        )
    cursor = WatchCursor.from_json(context.cursor)
    batch = read_new_attempts(engine, cursor, attempts_until, MAX_ATTEMPTS_PER_TICK)
    sessions = read_completed_sessions(engine, cursor, sessions_until, MAX_SESSIONS_PER_TICK)

    dynamic = []
    new_users: list[str] = []
    keys, unusable = _partition_keys(batch.user_ids)
    if unusable:
        # Not fatal: such a student gets no per-student partition (the batch assets still
        # cover them); the id is in the product's data and only its owner can fix it.
        context.log.warning(
            f"{len(unusable)} student ids cannot be 'users' partition keys and were skipped: "
            + "; ".join(unusable[:MAX_BAD_REPORTED])
        )
    if keys:
        known = set(context.instance.get_dynamic_partitions(users.name))
        new_users = [k for k in keys if k not in known]
        if len(new_users) > MAX_REQUESTED_USERS:
            context.instance.add_dynamic_partitions(users.name, new_users)  # idempotent
        elif new_users:
            dynamic.append(users.build_add_request(new_users))

    days = partition_days(batch.days, date.fromisoformat(PARTITIONS_START), _last_day(now))
    requests = [
        dg.RunRequest(
            run_key=features_run_key(day, batch),
            job_name=features_topic_daily_job.name,
            partition_key=day.isoformat(),
            tags={TRIGGER_TAG: "new_attempts"},
        )
        for day in days
    ]
    online = online_updates_enabled()
    if sessions.user_ids and online:
        requests.append(
            dg.RunRequest(
                run_key=rescore_run_key(sessions),
                job_name=student_rescore_job.name,
                run_config={
                    "ops": {
                        "rescore_students": {
                            "config": {"user_ids": sessions.user_ids, "source": "online"}
                        }
                    }
                },
                tags={
                    TRIGGER_TAG: "new_attempts",
                    "seedtest/students": str(len(sessions.user_ids)),
                },
            )
        )

    after = WatchCursor(
        attempted_at=batch.to_attempted_at,
        attempt_id=batch.to_id,
        completed_at=sessions.completed_at,
        session_id=sessions.session_id,
    )
    summary = (
        f"{batch.rows} attempts (to {batch.to_attempted_at}, id {batch.to_id}"
        f"{', more pending' if batch.full else ''}), "
        f"{f'{batch.bad_rows} malformed, ' if batch.bad_rows else ''}"
        f"{len(new_users)} new students, "
        f"{f'{len(unusable)} unusable student ids, ' if unusable else ''}"
        f"{len(days)} feature days, "
        f"{sessions.sessions} completed sessions of {len(sessions.user_ids)} students"
        f"{'' if online else ' (online update disabled)'}"
        f"{', more pending' if sessions.full else ''}; {time.perf_counter() - started:.2f} s"
    )
    if batch.bad_rows:
        # Never fatal: the day's features run quarantines what it owns, the `attempts` source
        # check reports the rest. Said on every tick that reads such rows.
        context.log.warning(
            f"{batch.bad_rows} malformed attempt rows (skipped for students; quarantined by "
            f"their day's features run): " + "; ".join(batch.bad)
        )
    context.log.info(summary)
    if not requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(summary),
            dynamic_partitions_requests=dynamic,
            cursor=after.to_json(),
        )
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=dynamic, cursor=after.to_json()
    )
