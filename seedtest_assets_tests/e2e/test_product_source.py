"""The pipeline end to end on a product-shaped source (PostgreSQL).

The exam product's own schema ``exam`` (its relation and column names, the ``exam.attempt``
view, text ids such as ``'u-000001'``) is filled from the synthetic generator; our warehouse
is migrated into ``public`` of the same database and our own source tables stay empty.
``SOURCE_*`` point at ``exam``; the core pipeline functions then compute features,
calibration, abilities, topic abilities, KPIs, reports and an online update, and each
output is compared with SQL over the raw ``exam`` tables (not through our readers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from seedtest_assets.core.features_topic_daily.pipeline import materialize_features
from seedtest_assets.core.mirt_ability.online import update_theta
from seedtest_assets.core.mirt_ability.pipeline import DEFAULT_LOOKBACK_WEEKS, score_week
from seedtest_assets.core.mirt_item_params.pipeline import calibrate_week
from seedtest_assets.core.report_artifacts.pipeline import Selection, run_batch
from seedtest_assets.core.report_artifacts.store import StoreSettings
from seedtest_assets.core.source.relations import check_source, clear_source_cache
from seedtest_assets.core.synthetic import SyntheticConfig, generate
from seedtest_assets.core.topic_ability.pipeline import materialize_week
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.weekly_kpi.pipeline import materialize_weekly_kpi
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.product_source import (
    PRODUCT_ENV,
    catalog_snapshot,
    create_product_schema,
    write_product,
)

START = date(2026, 1, 5)  # a Monday
WEEKS = (START, START + timedelta(weeks=1))
END = START + timedelta(weeks=2)
DAY = START + timedelta(days=2)  # the day whose features are compared
NOW = datetime(2026, 1, 20, 12, 0)
REPORTED = 5


@dataclass
class Built:
    engine: Engine
    written: dict[str, int]
    features_day: object = None
    features_all: object = None
    calibration: object = None
    scoring: object = None
    topics: object = None
    kpis: object = None
    online: object = None
    batch: object = None
    reports: Path = Path()
    exam_before: dict = field(default_factory=dict)


def sql(engine: Engine, statement: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(statement), params)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _require_postgres()
    url = create_postgres_database("seedtest_product_e2e")
    engine = make_engine(url)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in PRODUCT_ENV.items():
            mp.setenv(k, v)
        clear_source_cache()
        try:
            create_product_schema(engine)
            pop = generate(SyntheticConfig(n_users=150, weeks=2, seed=23, start=START))
            out = Built(engine, write_product(engine, pop.tables()))
            out.exam_before = catalog_snapshot(engine)
            upgrade(url)  # our tables into public, beside the product's
            check_source(engine)
            out.features_day = materialize_features(engine, DAY, DAY + timedelta(days=1), now=NOW)
            out.features_all = materialize_features(engine, START, END, now=NOW)
            week = WEEKS[1]
            out.calibration = calibrate_week(engine, week, now=NOW)
            out.scoring = score_week(engine, week, now=NOW)
            out.topics = materialize_week(engine, week, now=NOW)
            out.kpis = materialize_weekly_kpi(engine, week, now=NOW)
            someone = out.scoring.rows["user_id"][0]
            out.online = update_theta(engine, [someone], now=NOW)
            out.reports = tmp_path_factory.mktemp("reports")
            store = StoreSettings(local_dir=str(out.reports))
            out.batch = run_batch(
                engine,
                week,
                Selection(max_users=REPORTED),
                store=store,
                now=NOW,
                workers=1,
                formats=("html",),
            )
            yield out
        finally:
            clear_source_cache()
            engine.dispose()
            drop_postgres_database(url)
    clear_source_cache()


def test_the_product_was_filled_and_ours_stay_empty(built):
    e = built.engine
    assert built.written["exam.answers"] > 1000
    assert sql(e, "SELECT count(*) FROM exam.attempt") == [(built.written["exam.answers"],)]
    for ours in ("attempts", "users", "items", "topics", "exam_sessions", "organizations"):
        assert sql(e, f"SELECT count(*) FROM public.{ours}") == [(0,)], ours
    assert catalog_snapshot(e) == built.exam_before  # nothing of ours touched exam


def test_features_of_a_day_match_the_raw_answers(built):
    e = built.engine
    lo, hi = datetime(DAY.year, DAY.month, DAY.day), datetime(DAY.year, DAY.month, DAY.day + 1)
    ((pairs, answers),) = sql(
        e,
        "SELECT count(DISTINCT (student_id, unit_id)), count(*) FROM exam.answers "
        "WHERE answered_at >= :lo AND answered_at < :hi",
        lo=lo,
        hi=hi,
    )
    run = built.features_day
    assert run.source_rows == answers and run.rejected_rows == 0
    assert run.feature_rows == pairs > 0
    ((rows, summed),) = sql(
        e, "SELECT count(*), sum(attempts) FROM features_topic_daily WHERE date = :d", d=DAY
    )
    assert (rows, summed) == (pairs, answers)
    ((total,),) = sql(e, "SELECT count(*) FROM exam.answers")
    assert built.features_all.source_rows == total
    assert sql(e, "SELECT sum(attempts) FROM features_topic_daily") == [(total,)]
    # the product's own strings, as they are in its tables
    unknown = sql(
        e,
        "SELECT count(*) FROM features_topic_daily f WHERE NOT EXISTS "
        "(SELECT 1 FROM exam.students s WHERE s.student_id = f.user_id) OR NOT EXISTS "
        "(SELECT 1 FROM exam.units u WHERE u.unit_id = f.topic_id)",
    )
    assert unknown == [(0,)]


def test_calibration_and_abilities_cover_the_window(built):
    e = built.engine
    week_end = WEEKS[1] + timedelta(weeks=1)
    window_start = week_end - timedelta(weeks=DEFAULT_LOOKBACK_WEEKS)
    ((students,),) = sql(
        e,
        "SELECT count(DISTINCT student_id) FROM exam.answers "
        "WHERE answered_at >= :lo AND answered_at < :hi",
        lo=window_start,
        hi=week_end,
    )
    assert built.calibration is not None and built.calibration.items > 0
    ((questions,),) = sql(e, "SELECT count(DISTINCT question_id) FROM exam.answers")
    assert built.calibration.items <= questions
    rows = built.scoring.rows
    assert rows.height == students
    assert set(rows["user_id"]) <= {r[0] for r in sql(e, "SELECT student_id FROM exam.students")}
    assert rows["user_id"].str.starts_with("u-").all()
    stored = sql(e, "SELECT count(*) FROM mirt_ability WHERE source = 'weekly'")
    assert stored == [(students,)]


def test_topic_abilities_kpis_reports_and_online_update(built):
    e = built.engine
    topics = built.topics.rows
    assert topics.height > 0
    pairs = {(u, t) for u, t in sql(e, "SELECT DISTINCT student_id, unit_id FROM exam.answers")}
    assert set(zip(topics["user_id"], topics["topic_id"], strict=True)) <= pairs
    kpis = built.kpis.kpis
    assert kpis.height > 0
    assert set(kpis["user_id"]) <= {r[0] for r in sql(e, "SELECT student_id FROM exam.students")}
    batch = built.batch
    assert not batch.failures, batch.failures
    assert len(batch.succeeded_users) == REPORTED
    files = sorted(built.reports.rglob("*.html"))
    assert sorted(p.stem for p in files) == sorted(batch.succeeded_users)
    # the students active in the week, lowest ids first (Selection's default)
    first = sql(
        e,
        "SELECT DISTINCT a.student_id FROM exam.answers a JOIN exam.students s "
        "ON s.student_id = a.student_id WHERE a.answered_at >= :lo AND a.answered_at < :hi "
        "ORDER BY 1 LIMIT :n",
        lo=WEEKS[1],
        hi=WEEKS[1] + timedelta(weeks=1),
        n=REPORTED,
    )
    assert sorted(batch.succeeded_users) == [r[0] for r in first]
    online = built.online
    assert online.rows.height == 1
    assert online.rows["user_id"][0] == built.scoring.rows["user_id"][0]
    assert pl.Series(sql(e, "SELECT user_id FROM mirt_ability WHERE source = 'online'")).len() == 1
