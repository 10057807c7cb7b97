from datetime import datetime, timedelta

import polars as pl
from sqlalchemy import select

from seedtest_assets.core.features_topic_daily.pipeline import materialize_features
from seedtest_assets.core.user_inactivity.pipeline import (
    materialize_inactivity,
    stored_inactivity_stats,
)
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.factories import DAY, insert_attempts, planted_day, seed_reference

NOW = datetime(2026, 3, 20)


def test_inactivity_from_features_ignores_rejected_rows(warehouse_url):
    seed_reference(warehouse_url, n_users=4)  # user 4 never practises
    frame, _ = planted_day()  # user 3 only has conflicting duplicates (rejected)
    insert_attempts(warehouse_url, frame)
    engine = make_engine(warehouse_url)
    materialize_features(engine, DAY, DAY + timedelta(days=1), now=NOW)

    end = DAY + timedelta(days=9)
    run = materialize_inactivity(engine, DAY, end, now=NOW)
    with engine.connect() as conn:
        rows = read_frame(conn, select(s.user_inactivity))
    assert run.rows == rows.height == 4 * 9
    last = rows.filter(pl.col("as_of_date") == end - timedelta(days=1)).sort("user_id")
    assert last["status"].to_list() == ["at_risk", "at_risk", "never_active", "never_active"]
    assert last["days_inactive"].to_list() == [8, 8, None, None]
    stats = stored_inactivity_stats(engine, DAY, end)
    assert stats == {"rows": 36, "expected": 36, "bad_status": 0}
    # re-run replaces
    materialize_inactivity(engine, DAY, end, now=NOW)
    assert stored_inactivity_stats(engine, DAY, end)["rows"] == 36
    engine.dispose()
