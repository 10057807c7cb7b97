"""The features pipeline against real warehouses (SQLite file and PostgreSQL)."""

from datetime import datetime, timedelta

import polars as pl
from sqlalchemy import func, select

from seedtest_assets.core.features_topic_daily.pipeline import (
    materialize_features,
    stored_feature_stats,
    stored_rejected_rows,
)
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.factories import DAY, insert_attempts, planted_day, seed_reference

NOW = datetime(2026, 3, 10)


def test_planted_bad_rows_are_quarantined_and_the_rest_aggregated(warehouse_url):
    seed_reference(warehouse_url)
    frame, expected = planted_day()
    insert_attempts(warehouse_url, frame)
    engine = make_engine(warehouse_url)

    run = materialize_features(engine, DAY, DAY + timedelta(days=1), now=NOW)

    assert run.source_rows == frame.height
    assert run.valid_rows == 6
    assert run.rejects_by_reason == dict(sorted(expected.items()))
    with engine.connect() as conn:
        feats = read_frame(conn, select(s.features_topic_daily).order_by("user_id", "topic_id"))
        rejects = read_frame(conn, select(s.attempt_rejects))
    assert feats.select("user_id", "topic_id", "attempts", "correct").rows() == [
        ("1", "1", 2, 1),
        ("1", "2", 1, 1),
        ("2", "1", 3, 2),
    ]
    u2 = feats.row(2, named=True)
    assert u2["rt_median"] == 3000.0 and u2["accuracy"] == 2 / 3
    assert u2["last_attempt_at"] == datetime(2026, 3, 2, 20, 2)
    assert set(rejects["partition_date"]) == {DAY}
    assert (
        rejects.filter(pl.col("reason") == "unknown_user")["raw"].item().find('"user_id":"999"') > 0
    )
    # nothing lost, counted in the warehouse itself
    stats = stored_feature_stats(engine, DAY, DAY + timedelta(days=1))
    assert (
        stats["attempts"] + stored_rejected_rows(engine, DAY, DAY + timedelta(days=1))
        == frame.height
    )
    engine.dispose()


def test_rerunning_a_partition_replaces_it(warehouse_url):
    seed_reference(warehouse_url)
    frame, _ = planted_day()
    insert_attempts(warehouse_url, frame)
    engine = make_engine(warehouse_url)
    end = DAY + timedelta(days=1)
    first = materialize_features(engine, DAY, end, now=NOW)
    second = materialize_features(engine, DAY, end, now=NOW + timedelta(hours=1))
    with engine.connect() as conn:
        n_feat = conn.execute(select(func.count()).select_from(s.features_topic_daily)).scalar_one()
        n_rej = conn.execute(select(func.count()).select_from(s.attempt_rejects)).scalar_one()
        stamps = conn.execute(select(func.max(s.features_topic_daily.c.computed_at))).scalar_one()
    assert n_feat == first.feature_rows == second.feature_rows == 3
    assert n_rej == len(first.rejects_by_reason)
    assert stamps == NOW + timedelta(hours=1)
    engine.dispose()


def test_partition_only_touches_its_own_days(warehouse_url):
    seed_reference(warehouse_url)
    day1, _ = planted_day(DAY)
    day2, _ = planted_day(DAY + timedelta(days=1))
    insert_attempts(warehouse_url, day1)
    insert_attempts(warehouse_url, day2.with_columns(pl.col("id") + 1000))
    engine = make_engine(warehouse_url)
    materialize_features(engine, DAY, DAY + timedelta(days=2), now=NOW)
    # re-run day 2 only: day 1's rows (features and rejects) are untouched
    run2 = materialize_features(engine, DAY + timedelta(days=1), DAY + timedelta(days=2), now=NOW)
    with engine.connect() as conn:
        by_day = dict(
            conn.execute(
                select(s.features_topic_daily.c.date, func.count()).group_by(
                    s.features_topic_daily.c.date
                )
            ).all()
        )
        rej_days = dict(
            conn.execute(
                select(s.attempt_rejects.c.partition_date, func.count()).group_by(
                    s.attempt_rejects.c.partition_date
                )
            ).all()
        )
    assert by_day == {DAY: 3, DAY + timedelta(days=1): 3}
    assert rej_days[DAY] == rej_days[DAY + timedelta(days=1)] == len(run2.rejects_by_reason)
    # day 2 sees day 1 as prior history: improvement is set for returning student-topics
    with engine.connect() as conn:
        imp = conn.execute(
            select(s.features_topic_daily.c.improvement).where(
                s.features_topic_daily.c.date == DAY + timedelta(days=1),
                s.features_topic_daily.c.user_id == "2",
            )
        ).scalar_one()
    assert imp == 0.0  # same 2/3 accuracy both days
    engine.dispose()


def test_failed_write_leaves_previous_state(warehouse_url, monkeypatch):
    seed_reference(warehouse_url)
    frame, _ = planted_day()
    insert_attempts(warehouse_url, frame)
    engine = make_engine(warehouse_url)
    materialize_features(engine, DAY, DAY + timedelta(days=1), now=NOW)

    import seedtest_assets.core.attempts.rejects as rejects
    import seedtest_assets.core.features_topic_daily.table as features_table

    calls = {"n": 0}
    real = features_table.replace_rows

    def fail_on_second(conn, table, where, frame, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(conn, table, where, frame, **kwargs)

    # The features are written first, then the rejects: the second write fails.
    monkeypatch.setattr(features_table, "replace_rows", fail_on_second)
    monkeypatch.setattr(rejects, "replace_rows", fail_on_second)
    try:
        materialize_features(engine, DAY, DAY + timedelta(days=1), now=NOW + timedelta(days=1))
        raise AssertionError("expected the injected failure")
    except RuntimeError as exc:
        assert "disk full" in str(exc)
    with engine.connect() as conn:
        stamps = conn.execute(select(func.max(s.features_topic_daily.c.computed_at))).scalar_one()
        n = conn.execute(select(func.count()).select_from(s.features_topic_daily)).scalar_one()
    assert stamps == NOW and n == 3  # the first run's rows, intact
    engine.dispose()
