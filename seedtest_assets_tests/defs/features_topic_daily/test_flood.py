"""A flood from one student (finding 5): a student-day beyond the plausibility limits is
quarantined whole, with a reason, nothing lost, and the WARN check says which student-day."""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl
from sqlalchemy import select

from seedtest_assets.core.features_topic_daily.pipeline import (
    materialize_features,
    source_row_count,
    stored_feature_stats,
    stored_rejected_rows,
)
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.features_topic_daily.assets import features_topic_daily
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets_tests.factories import (
    DAY,
    attempts_frame,
    insert_attempts,
    planted_day,
    seed_reference,
)

NOW = datetime(2026, 3, 10)
FLOOD = 20_000


def flood(n: int = FLOOD, user: str = "3", first_id: int = 10_000, rt: int = 1_500) -> pl.DataFrame:
    """``n`` attempts of one student in one day, one every 1.5 s from 01:00 UTC."""
    start = datetime(DAY.year, DAY.month, DAY.day, 1)
    return attempts_frame(
        [
            {
                "id": first_id + i,
                "user_id": user,
                "item_id": 100 + i % 2,
                "is_correct": i % 2 == 0,
                "response_time_ms": rt,
                "attempted_at": start + timedelta(milliseconds=rt * i),
            }
            for i in range(n)
        ]
    )


def seeded(url: str) -> None:
    seed_reference(url)
    good, _ = planted_day()
    insert_attempts(url, good.filter(pl.col("id") <= 6).unique("id", keep="first"))
    insert_attempts(url, flood())


def test_a_flooded_student_day_is_quarantined_whole_and_nothing_is_lost(warehouse_url):
    seeded(warehouse_url)
    engine = make_engine(warehouse_url)
    end = DAY + timedelta(days=1)
    run = materialize_features(engine, DAY, end, now=NOW)  # all 20,006 were valid before

    assert (run.source_rows, run.valid_rows) == (FLOOD + 6, 6)
    assert run.rejects_by_reason == {"student_day_attempts": FLOOD}  # 8.3 h: under 16 h
    assert run.student_days.rows() == [("3", DAY, FLOOD, FLOOD * 1_500)]
    with engine.connect() as conn:
        users = read_frame(conn, select(s.features_topic_daily.c.user_id).distinct())
        detail = conn.execute(
            select(s.attempt_rejects.c.detail).where(s.attempt_rejects.c.attempt_id == 10_000)
        ).scalar_one()
    assert sorted(users["user_id"]) == ["1", "2"]
    assert detail == f"student 3 on {DAY}: {FLOOD} valid attempts (limit 1000)"
    assert source_row_count(engine, DAY, end) == (
        stored_feature_stats(engine, DAY, end)["attempts"] + stored_rejected_rows(engine, DAY, end)
    )
    engine.dispose()


def test_the_plausibility_check_warns_and_names_the_student_day(sqlite_url):
    seeded(sqlite_url)
    insert_attempts(  # and a second student past 16 hours in 40 attempts of 25 minutes
        sqlite_url, flood(40, user="1", first_id=50_000, rt=1_500_000)
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [features_topic_daily],
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
            partition_key=DAY.isoformat(),
        )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    plausible = checks["plausible_student_days"]
    assert not plausible.passed and plausible.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in plausible.metadata.items()}
    assert meta["quarantined_attempts"] == FLOOD + 40 + 3  # student 1's day, its 3 good rows too
    assert meta["sample_student_days"] == [
        f"student 1 on {DAY}: 43 attempts, 16.7 h",
        f"student 3 on {DAY}: {FLOOD} attempts, 8.3 h",
    ]
    assert checks["attempts_reconcile"].passed
