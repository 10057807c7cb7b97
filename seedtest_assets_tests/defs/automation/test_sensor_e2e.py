"""End to end: a session lands in the warehouse and, with only the daemon running, the student's
new theta appears in ``mirt_ability`` and in the UI (real webserver + daemon, PostgreSQL).

The code's clock is frozen (``clock`` fixture, ``NOON``) here and, through
``SEEDTEST_FROZEN_NOW``, in the servers, their code servers and run workers: the population,
the session and the sensor's "now" and "today" are the same instant's at any real time (a
session inserted just after midnight UTC used to put its attempts on yesterday, a complete
day, and the sensor then launched a features run the test did not expect).
"""

import time
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import func, select

from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.synthetic.generate import format_id
from seedtest_assets.core.warehouse import insert_frame, make_engine, transaction, upgrade
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.mirt_ability.assets import mirt_ability
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.partitions import user_partition_key, users
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.dagster_servers import dagster_servers, dagster_yaml, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: A student (and their session) the generator never writes: its ids go up to the population.
NEW_USER = format_id("user_id", 10_000_001)  # "u-10000001"
NEW_SESSION = format_id("session_id", 90_000_001)
SENSOR = "new_attempts"

SENSOR_RUNS = """
query SensorRuns($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}"""


def runs_launched_by(servers, sensor: str) -> list[dict]:
    """What the UI's Runs page lists for the sensor (runs tagged dagster/sensor_name)."""
    data = servers.graphql(SENSOR_RUNS, {"tags": [{"key": "dagster/sensor_name", "value": sensor}]})
    return data["runsOrError"]["results"]


def calibrated_population(url: str, home, instance_url: str) -> str:
    """300 students x 3 weeks ending last week; that week calibrated and scored in-process."""
    today = utc_now().date()
    this_monday = today - timedelta(days=today.weekday())
    start = this_monday - timedelta(weeks=3)
    engine = make_engine(url)
    load(engine, generate(SyntheticConfig(n_users=300, weeks=3, seed=3, start=start)))
    engine.dispose()
    week = (this_monday - timedelta(weeks=1)).isoformat()
    (home / "dagster.yaml").write_text(dagster_yaml(instance_url))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        result = dg.materialize(
            [mirt_item_params, mirt_ability],
            partition_key=week,
            instance=instance,
            resources={"warehouse": WarehouseResource(database_url=url)},
        )
        assert result.success
    finally:
        instance.dispose()
    return week


def complete_a_session(url: str, week: str) -> None:
    """A new student answers 12 calibrated items and completes the session a minute ago (the
    sensor waits out ``DEFAULT_SETTLE`` after a completion: with a frozen clock, a minute)."""
    engine = make_engine(url)
    now = utc_now()
    with engine.connect() as conn:
        items = conn.execute(
            select(s.items.c.item_id, s.items.c.topic_id)
            .join(s.mirt_item_params, s.mirt_item_params.c.item_id == s.items.c.item_id)
            .where(s.mirt_item_params.c.week_start == date.fromisoformat(week))
            .order_by(s.items.c.item_id)
            .limit(12)
        ).all()
        org = conn.execute(select(func.min(s.users.c.org_id))).scalar_one()
        next_id = conn.execute(select(func.max(s.attempts.c.id))).scalar_one() + 1
        taken = conn.execute(
            select(func.count()).where(s.exam_sessions.c.session_id == NEW_SESSION)
        ).scalar_one()
    assert taken == 0, f"{NEW_SESSION} is a generated session"
    session = NEW_SESSION
    n = len(items)
    with transaction(engine) as conn:
        insert_frame(
            conn,
            s.users,
            pl.DataFrame(
                {
                    "user_id": [NEW_USER],
                    "org_id": [org],
                    "display_name": ["새 학생"],
                    "created_at": [now - timedelta(hours=1)],
                }
            ),
        )
        insert_frame(
            conn,
            s.attempts,
            pl.DataFrame(
                {
                    "id": list(range(next_id, next_id + n)),
                    "user_id": [NEW_USER] * n,
                    "session_id": [session] * n,
                    "item_id": [i for i, _ in items],
                    "topic_id": [t for _, t in items],
                    "is_correct": [i % 3 != 0 for i in range(n)],
                    "response_time_ms": [20_000] * n,
                    "hints_used": [0] * n,
                    "attempted_at": [now - timedelta(minutes=n + 1 - i) for i in range(n)],
                }
            ),
        )
        insert_frame(
            conn,
            s.exam_sessions,
            pl.DataFrame(
                {
                    "session_id": [session],
                    "user_id": [NEW_USER],
                    "started_at": [now - timedelta(minutes=n + 2)],
                    "completed_at": [now - timedelta(minutes=1)],
                }
            ),
        )
    engine.dispose()


def online_rows(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(s.mirt_ability).where(
                    s.mirt_ability.c.user_id == NEW_USER, s.mirt_ability.c.source == "online"
                )
            )
            .mappings()
            .all()
        )
    engine.dispose()
    return rows


def test_completed_session_updates_theta_with_only_the_daemon_running(tmp_path, clock):
    _require_postgres()  # skips locally without PostgreSQL, fails under CI=true
    warehouse_url = create_postgres_database("seedtest_e2e_wh")
    instance_url = create_postgres_database("seedtest_e2e_dagster")
    home = tmp_path / "dagster_home"
    home.mkdir()
    try:
        upgrade(warehouse_url)
        week = calibrated_population(warehouse_url, home, instance_url)
        env = {
            "DATABASE_URL": warehouse_url,
            "SEEDTEST_HOME": str(tmp_path),
            "SEEDTEST_NEW_ATTEMPTS_INTERVAL": "2",
            **clock.env(),  # the servers and the runs they launch share the frozen now
        }
        with dagster_servers(home, instance_url, env) as servers:
            assert servers.start_sensor(SENSOR) == "RUNNING"  # as an operator does in the UI
            # The first tick only sets the cursor ("from now on").
            first = wait_for(lambda: [t for t in servers.ticks(SENSOR) if t["cursor"]], 45)
            assert first, servers.log_tail("daemon")

            complete_a_session(warehouse_url, week)
            inserted = time.monotonic()
            rows = wait_for(lambda: online_rows(warehouse_url), 60)
            assert rows, servers.log_tail("daemon")
            latency = time.monotonic() - inserted
            [row] = rows
            assert row["version"] == f"2PL@{week}" and row["n_responses"] == 12
            assert row["fitted_at"] == clock.now  # the run worker read SEEDTEST_FROZEN_NOW
            assert -4 < row["theta"] < 4 and 0 < row["se"] < 1

            # The UI shows the student's partition with the new theta, from the online run.
            key = user_partition_key(NEW_USER)
            event = wait_for(
                lambda: servers.latest_student_event(["student", "mirt_ability"], key), 20
            )
            assert event and event["metadata"]["source"] == "online"
            assert event["metadata"]["theta"] == pytest.approx(row["theta"])

            # The runs the sensor launched, as the UI lists them: the one online update, done.
            launched = wait_for(
                lambda: [r for r in runs_launched_by(servers, SENSOR) if r["status"] == "SUCCESS"],
                30,
            )
            assert launched, runs_launched_by(servers, SENSOR)
            assert [r["jobName"] for r in launched] == ["student_rescore_job"]
            assert launched[0]["runId"] == event["runId"]
            tick_runs = {rid for t in servers.ticks(SENSOR) for rid in t["runIds"]}
            assert event["runId"] in tick_runs  # and the tick that requested it says so
            tags = {t["key"]: t["value"] for t in launched[0]["tags"]}
            assert tags["seedtest/workload"] == "online" and tags["dagster/priority"] == "10"

            instance = dg.DagsterInstance.from_config(str(home))
            try:
                assert key in instance.get_dynamic_partitions(users.name)  # registered
                # Later ticks see nothing new and launch nothing more.
                ran = instance.get_runs(dg.RunsFilter(job_name="student_rescore_job"))
                assert len(ran) == 1 and ran[0].run_id == event["runId"]
                seen = len(servers.ticks(SENSOR))
                assert wait_for(lambda: len(servers.ticks(SENSOR)) >= seen + 2, 30)
                assert len(instance.get_runs(dg.RunsFilter(job_name="student_rescore_job"))) == 1
                assert len(online_rows(warehouse_url)) == 1
            finally:
                instance.dispose()
        print(f"session inserted -> online theta row: {latency:.1f} s")
    finally:
        drop_postgres_database(warehouse_url)
        drop_postgres_database(instance_url)
