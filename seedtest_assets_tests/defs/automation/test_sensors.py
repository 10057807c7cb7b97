"""The ``new_attempts`` sensor, evaluated with ``build_sensor_context`` (no daemon).

Every test runs with the code's clock frozen (the ``clock`` fixture, at ``NOON`` unless
parametrized): the attempts that arrive "2 and 3 minutes ago" are placed from that clock, and
the sensor's "today" (not a partition yet) comes from it too.
"""

import dataclasses
import json
from datetime import date, timedelta

import dagster as dg
import pytest

from seedtest_assets.core.attempts.watch import WatchCursor
from seedtest_assets.core.settings import utc_now
from seedtest_assets.definitions import build_defs
from seedtest_assets.defs.automation import sensors
from seedtest_assets.defs.automation.sensors import new_attempts
from seedtest_assets.defs.partitions import users
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets_tests.clock import JUST_AFTER_MIDNIGHT, MIDNIGHT_PLUS_2_59, NOON
from seedtest_assets_tests.factories import (
    DAY,
    at,
    attempts_frame,
    insert_attempts,
    insert_raw_attempts,
    seed_reference,
)
from seedtest_assets_tests.online_factories import insert_sessions

defs = build_defs()

NEXT_DAY = DAY + timedelta(days=1)

#: (frozen now, the complete day that the attempts of 3 and 2 minutes ago fall on, if any).
#: Until 00:03 UTC the attempt of 3 minutes ago is yesterday's: yesterday is a complete day,
#: so its features are requested too; today's attempts never are (today is not a partition).
AROUND_MIDNIGHT = [
    pytest.param(NOON, None, id="noon"),
    pytest.param(JUST_AFTER_MIDNIGHT, date(2026, 3, 10), id="00:00:30"),
    pytest.param(MIDNIGHT_PLUS_2_59, date(2026, 3, 10), id="00:02:59"),
]


def tick(instance, url: str, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=url)},
    ) as context:
        return new_attempts(context)


def added_users(result: dg.SensorResult) -> list[str]:
    return [k for r in result.dynamic_partitions_requests for k in r.partition_keys]


def by_job(result: dg.SensorResult, job: str) -> list[dg.RunRequest]:
    return [r for r in result.run_requests if r.job_name == job]


def arrive(url: str) -> None:
    """A day of attempts (two students, one unknown id), attempts of 3 and 2 minutes ago
    (by the code's clock, as the sensor will see them), four sessions."""
    now = utc_now()
    insert_attempts(
        url,
        attempts_frame(
            [
                {"id": 101, "user_id": 1, "attempted_at": at(DAY, 9)},
                {"id": 102, "user_id": 2, "attempted_at": at(DAY, 10)},
                {"id": 103, "user_id": 999, "attempted_at": at(NEXT_DAY, 10)},
                {"id": 104, "user_id": 3, "attempted_at": now - timedelta(minutes=3)},
                {"id": 105, "user_id": 1, "attempted_at": now - timedelta(minutes=2)},
            ]
        ),
    )
    insert_sessions(
        url,
        [
            {"session_id": 10, "user_id": 1, "started_at": now - timedelta(minutes=20),
             "completed_at": now - timedelta(minutes=10)},
            {"session_id": 11, "user_id": 3, "started_at": now - timedelta(minutes=20),
             "completed_at": now - timedelta(minutes=1)},
            {"session_id": 12, "user_id": 2, "started_at": now, "completed_at": None},
            # A writer whose clock runs ahead: seen once that time has passed.
            {"session_id": 13, "user_id": 2, "started_at": now,
             "completed_at": now + timedelta(hours=1)},
        ],
    )  # fmt: skip


@pytest.fixture
def url(warehouse_url, clock) -> str:
    """The reference data, with the code's clock frozen for the whole test."""
    seed_reference(warehouse_url, n_users=4)
    return warehouse_url


def expected_feature_days(late_day: date | None) -> list[date]:
    return [DAY, NEXT_DAY] + ([late_day] if late_day else [])


def test_first_tick_starts_at_now_and_requests_nothing(url):
    insert_attempts(url, attempts_frame([{"id": 7, "user_id": 1, "attempted_at": at(DAY, 9)}]))
    with dg.instance_for_test() as instance:
        result = tick(instance, url, None)
    assert result.run_requests == [] and added_users(result) == []
    assert "sensor started" in result.skip_reason.skip_message
    assert WatchCursor.from_json(result.cursor).attempt_id == 7  # history is not replayed


@pytest.mark.parametrize(("clock", "late_day"), AROUND_MIDNIGHT, indirect=["clock"])
def test_tick_registers_students_requests_features_and_one_online_run(url, clock, late_day):
    with dg.instance_for_test() as instance:
        start = tick(instance, url, None).cursor
        arrive(url)
        instance.add_dynamic_partitions(users.name, ["1"])  # already known
        result = tick(instance, url, start)

    assert added_users(result) == ["2", "3"]  # 1 known, 999 not a student, 4 no attempts
    features = by_job(result, "features_topic_daily_job")
    # Complete days only: today is not a partition yet (the daily schedule computes it).
    days = expected_feature_days(late_day)
    assert [r.partition_key for r in features] == [d.isoformat() for d in days]
    cursor = WatchCursor.from_json(result.cursor)
    assert cursor.attempted_at == clock.now - timedelta(minutes=2)  # 105, exactly at the lag
    assert cursor.attempt_id == 105 and cursor.session_id == "11"
    stamp = cursor.attempted_at.isoformat()
    assert [r.run_key for r in features] == [f"features_topic_daily:{d}:{stamp}:105" for d in days]
    [online] = by_job(result, "student_rescore_job")
    config = online.run_config["ops"]["rescore_students"]["config"]
    assert config == {"user_ids": ["1", "3"], "source": "online"}  # text ids in config, one run
    assert online.tags["seedtest/students"] == "2"
    assert online.run_key == f"student_rescore:{cursor.completed_at.isoformat()}:11"


def test_repeated_tick_asks_for_the_same_run_keys_and_the_next_for_nothing(url):
    with dg.instance_for_test() as instance:
        start = tick(instance, url, None).cursor
        arrive(url)
        first = tick(instance, url, start)
        again = tick(instance, url, start)  # e.g. the cursor was not saved before a crash
        assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
        assert again.cursor == first.cursor
        after = tick(instance, url, first.cursor)
    assert after.run_requests == [] and added_users(after) == []
    assert after.cursor == first.cursor
    assert "0 attempts" in after.skip_reason.skip_message


@pytest.mark.parametrize("clock", [JUST_AFTER_MIDNIGHT], indirect=True)
def test_cursor_is_durable_and_attempts_newer_than_the_lag_wait(url, clock):
    yesterday = (clock.now - timedelta(days=1)).date()
    with dg.instance_for_test() as instance:
        start = tick(instance, url, None).cursor
        arrive(url)
        first = tick(instance, url, start)
        instance.add_dynamic_partitions(users.name, added_users(first))  # what the daemon does
        # Both made within the 2-minute lag: 106 yesterday (23:59:30), 107 today.
        insert_attempts(
            url,
            attempts_frame(
                [
                    {"id": 106, "user_id": 2, "attempted_at": clock.now - timedelta(minutes=1)},
                    {"id": 107, "user_id": 4, "attempted_at": clock.now - timedelta(seconds=20)},
                ]
            ),
        )
        waiting = tick(instance, url, first.cursor)
        assert waiting.cursor == first.cursor and waiting.run_requests == []
        assert added_users(waiting) == [] and "0 attempts" in waiting.skip_reason.skip_message
        clock.advance(timedelta(minutes=2))
        second = tick(instance, url, waiting.cursor)
    assert added_users(second) == ["4"]
    # Yesterday is requested again, under a new key, because it got new attempts; today is
    # not a partition yet.
    cursor = WatchCursor.from_json(second.cursor)
    assert (cursor.attempted_at, cursor.attempt_id) == (clock.now - timedelta(seconds=140), 107)
    assert [r.run_key for r in second.run_requests] == [
        f"features_topic_daily:{yesterday}:{cursor.attempted_at.isoformat()}:107"
    ]


def test_late_rows_with_lower_ids_are_seen_once(url, clock):
    """The product's ids are not in commit order: id 5 arrives after id 900, attempted after
    it. Every row is handled once across the ticks (the id cursor never saw 5)."""
    now = clock.now
    with dg.instance_for_test() as instance:
        cursor = tick(instance, url, None).cursor
        registered: list[str] = []
        cursors = []
        for rows in (
            [(900, 1, -10)],
            [(5, 2, -6), (901, 3, -1)],  # 901 waits for the lag
            [(4, 4, -2.5)],  # after 901 (which the lag held back), with a lower id
            [],
        ):
            insert_attempts(
                url,
                attempts_frame(
                    [
                        {"id": i, "user_id": u, "attempted_at": now + timedelta(minutes=m)}
                        for i, u, m in rows
                    ]
                ),
            )
            result = tick(instance, url, cursor)
            cursor = result.cursor
            cursors.append(WatchCursor.from_json(cursor).attempt_id)
            registered += added_users(result)
            instance.add_dynamic_partitions(users.name, added_users(result))
            clock.advance(timedelta(minutes=2))
            now = clock.now
    assert cursors == [900, 5, 4, 4]
    assert registered == ["1", "2", "3", "4"]  # each student once, as their rows pass


def test_an_id_that_cannot_be_a_partition_key_is_skipped_not_fatal(url, monkeypatch, capfd):
    """Text ids come from the product: one Dagster cannot take as a key is skipped with a
    warning, counted, and the rest of the batch and the cursor go on."""
    bad = ["", "a\nb", "x" * 300]
    real = sensors.read_new_attempts

    def with_text_ids(*args, **kwargs):
        batch = real(*args, **kwargs)
        ids = sorted([*bad, "s-1", "s-2"]) if batch.rows else []
        return dataclasses.replace(batch, user_ids=ids)

    monkeypatch.setattr(sensors, "read_new_attempts", with_text_ids)
    with dg.instance_for_test() as instance:
        start = tick(instance, url, None).cursor
        arrive(url)
        result = tick(instance, url, start)
    assert added_users(result) == ["s-1", "s-2"]
    assert WatchCursor.from_json(result.cursor).attempt_id == 105
    assert len(by_job(result, "features_topic_daily_job")) == 2
    log = capfd.readouterr().err
    assert "3 student ids cannot be 'users' partition keys" in log
    assert "student id 'a\\nb'" in log and "student id ''" in log
    assert "'xxxxxxxx" in log and "x" * 100 not in log  # named, truncated
    assert "3 unusable student ids" in log


def test_a_version_1_cursor_is_converted_on_the_next_tick(url):
    arrive(url)  # ids 101..105; v1 had handled up to 103
    v1 = json.dumps({"v": 1, "attempt_id": 103, "completed_at": None, "session_id": 0})
    with dg.instance_for_test() as instance:
        result = tick(instance, url, v1)
    cursor = json.loads(result.cursor)
    assert cursor["v"] == 2 and "v1_after_id" not in cursor
    assert cursor["attempt_id"] == 105
    assert added_users(result) == ["1", "3"]  # the students of 104 and 105, nothing lost
    assert by_job(result, "features_topic_daily_job") == []  # today's attempts only


def test_many_new_students_are_registered_in_one_bulk_call(url, monkeypatch):
    monkeypatch.setattr(sensors, "MAX_REQUESTED_USERS", 1)
    with dg.instance_for_test() as instance:
        start = tick(instance, url, None).cursor
        arrive(url)
        result = tick(instance, url, start)
        assert added_users(result) == []  # not left to the daemon's per-key checks
        assert sorted(instance.get_dynamic_partitions(users.name)) == ["1", "2", "3"]


def test_bounded_batches_walk_through_a_backlog(url, monkeypatch):
    monkeypatch.setattr(sensors, "MAX_ATTEMPTS_PER_TICK", 2)
    monkeypatch.setattr(sensors, "MAX_SESSIONS_PER_TICK", 1)
    with dg.instance_for_test() as instance:
        cursor = tick(instance, url, None).cursor
        arrive(url)
        ids, online, registered = [], [], []
        for _ in range(4):
            result = tick(instance, url, cursor)
            cursor = result.cursor
            ids.append(WatchCursor.from_json(cursor).attempt_id)
            registered += added_users(result)
            instance.add_dynamic_partitions(users.name, added_users(result))
            online += [r.run_config["ops"]["rescore_students"]["config"]["user_ids"]
                       for r in by_job(result, "student_rescore_job")]  # fmt: skip
    assert ids == [102, 104, 105, 105]
    assert online == [["1"], ["3"]]  # one session per tick, one run each
    assert sorted(registered) == ["1", "2", "3"]


@pytest.mark.parametrize(("clock", "late_day"), AROUND_MIDNIGHT, indirect=["clock"])
def test_switch_off_keeps_users_and_features_but_requests_no_online_update(
    url, clock, late_day, monkeypatch
):
    monkeypatch.setenv("ENABLE_IRT_ONLINE_UPDATE", "false")
    with dg.instance_for_test() as instance:
        start = tick(instance, url, None).cursor
        arrive(url)
        result = tick(instance, url, start)
    assert by_job(result, "student_rescore_job") == []
    features = by_job(result, "features_topic_daily_job")
    assert [r.partition_key for r in features] == [
        d.isoformat() for d in expected_feature_days(late_day)
    ]
    assert added_users(result) == ["1", "2", "3"]
    # The sessions are passed over, not replayed when the switch comes back on.
    assert WatchCursor.from_json(result.cursor).session_id == "11"


def test_a_bad_row_is_skipped_and_reported_and_the_sensor_keeps_going(sqlite_url, clock, capfd):
    seed_reference(sqlite_url, n_users=4)
    with dg.instance_for_test() as instance:
        start = tick(instance, sqlite_url, None).cursor
        insert_raw_attempts(
            sqlite_url,
            [
                {"id": 101, "attempted_at": "2026-03-02 09:00:00"},
                # Not orderable by the cursor, so outside its scan (the source check reports
                # them; the day's run reads the number and quarantines it).
                {"id": 102, "attempted_at": 1772528400},
                {"id": 103, "attempted_at": "yesterday"},
                # Ids are text: "abc" is an id (of no student), not a malformed value.
                {"id": 104, "user_id": "abc", "attempted_at": "2026-03-03 09:00:00"},
            ],
        )
        first = tick(instance, sqlite_url, start)  # used to raise on every tick
        insert_raw_attempts(sqlite_url, [{"id": 105, "attempted_at": "2026-03-04 09:00:00"}])
        second = tick(instance, sqlite_url, first.cursor)
    assert [r.partition_key for r in by_job(first, "features_topic_daily_job")] == [
        "2026-03-02",
        "2026-03-03",
    ]
    assert WatchCursor.from_json(first.cursor).attempt_id == 104
    assert added_users(first) == ["1"]  # the student of 101; "abc" is in no users row
    assert [r.partition_key for r in by_job(second, "features_topic_daily_job")] == ["2026-03-04"]
    assert WatchCursor.from_json(second.cursor).attempt_id == 105
    log = capfd.readouterr().err  # the tick's log (Dagster's console handler)
    # The sensor reads ids as text: an unknown text id is an unknown student, never a
    # malformed row (validation quarantines it as unknown_user in the day's run).
    assert "malformed" not in log and "unusable" not in log
    assert "2 attempts (to 2026-03-03 09:00:00, id 104), 1 new students, 2 feature days" in log


def test_bytes_for_a_student_id_do_not_stop_the_sensor(sqlite_url, clock, capfd):
    # A BLOB of non-UTF-8 bytes in user_id (SQLite keeps one in any column) used to fail
    # every tick: "Could not decode to UTF-8 column 'user_id'".
    seed_reference(sqlite_url, n_users=4)
    with dg.instance_for_test() as instance:
        start = tick(instance, sqlite_url, None).cursor
        insert_raw_attempts(
            sqlite_url,
            [
                {"id": 101, "user_id": b"\xff\xfe", "attempted_at": "2026-03-02 09:00:00"},
                {"id": 102, "user_id": "2", "attempted_at": "2026-03-02 09:30:00"},
            ],
        )
        result = tick(instance, sqlite_url, start)
    assert WatchCursor.from_json(result.cursor).attempt_id == 102
    assert added_users(result) == ["2"]  # the bytes are no student (the day's run: bad_id)
    assert [r.partition_key for r in by_job(result, "features_topic_daily_job")] == ["2026-03-02"]


def test_a_malformed_cursor_fails_the_tick_loudly(url):
    with dg.instance_for_test() as instance, pytest.raises(ValueError, match="cursor"):
        tick(instance, url, json.dumps({"v": 99}))


def test_sensor_is_in_the_code_location_stopped_by_default():
    sensor = defs.resolve_sensor_def("new_attempts")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == sensors.INTERVAL_SECONDS
    assert {"features_topic_daily_job", "student_rescore_job"} <= {
        t.job_name for t in sensor.targets
    }
