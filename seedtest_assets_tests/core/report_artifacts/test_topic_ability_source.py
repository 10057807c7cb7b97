"""The reports' topic θ comes from the stored ``topic_ability``: the same figures, for every
student, as the in-batch IRT the report batch ran before; a missing partition is an error.

``old_topics`` is the removed computation (``_topic_stats`` + its part of ``read_inputs``,
verbatim), kept here only to compare against.
"""

import dataclasses
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import select

from seedtest_assets.core.attempts.read import read_valid_attempts
from seedtest_assets.core.irt import score
from seedtest_assets.core.mirt_ability.pipeline import latest_calibrated_week, score_week
from seedtest_assets.core.mirt_item_params.pipeline import calibrate_week, stored_item_params
from seedtest_assets.core.report_artifacts.content import TopicStats, build_report
from seedtest_assets.core.report_artifacts.pipeline import (
    Selection,
    TopicAbilityMissingError,
    read_inputs,
    run_batch,
    select_students,
    week_bounds,
)
from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.topic_ability.pipeline import materialize_week
from seedtest_assets.core.warehouse import make_engine, read_frame, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.report_helpers import WEEK, seed_week

START = date(2026, 2, 2)
WEEKS = [START + timedelta(weeks=i) for i in range(5)]
NOW = datetime.combine(WEEKS[-1] + timedelta(days=7), datetime.min.time()) + timedelta(hours=4)


def _old_topic_stats(valid: pl.DataFrame, items: pl.DataFrame, week_start: date) -> pl.DataFrame:
    lo, hi = week_bounds(week_start)
    in_week = (pl.col("attempted_at") >= lo) & (pl.col("attempted_at") < hi)
    stats = valid.group_by("user_id", "topic_id").agg(
        pl.len().alias("n"),
        pl.col("is_correct").sum().alias("n_correct"),
        in_week.sum().alias("week_attempts"),
        (in_week & pl.col("is_correct")).sum().alias("week_correct"),
        (pl.col("response_time_ms").filter(in_week).sum() / 60_000.0).alias("week_minutes"),
    )
    if items.height and valid.height:
        ids = valid.select("user_id", "topic_id").unique().with_row_index("pseudo")
        resp = valid.join(ids, on=["user_id", "topic_id"]).select(
            pl.col("pseudo").cast(pl.Int64).alias("user_id"), "item_id", "is_correct"
        )
        ab = score(resp, items.filter(~pl.col("flagged").fill_null(False)), method="EAP")
        theta = ab.join(
            ids.with_columns(pl.col("pseudo").cast(pl.Int64)),
            left_on="user_id",
            right_on="pseudo",
            suffix="_real",
        ).select(
            pl.col("user_id_real").alias("user_id"),
            "topic_id",
            pl.when(pl.col("n_responses") > 0).then(pl.col("theta")).alias("theta"),
            pl.when(pl.col("n_responses") > 0).then(pl.col("se")).alias("se"),
        )
        stats = stats.join(theta, on=["user_id", "topic_id"], how="left")
    else:
        stats = stats.with_columns(
            pl.lit(None, pl.Float64).alias("theta"), pl.lit(None, pl.Float64).alias("se")
        )
    return stats


def old_topics(engine, week_start, ids, now) -> dict[str, tuple[TopicStats, ...]]:
    """The topic section of ``read_inputs`` before topic_ability (IRT inside the batch)."""
    end = week_start + timedelta(days=7)
    start = end - timedelta(weeks=12)
    valid = pl.concat(
        [
            read_valid_attempts(engine, start, end, now=now, user_ids=ids[i : i + 5000])
            for i in range(0, len(ids), 5000)
        ]
    )
    calibrated = latest_calibrated_week(engine, "2PL", week_start)
    items = stored_item_params(engine, calibrated, "2PL") if calibrated else pl.DataFrame()
    with engine.connect() as conn:
        topics = read_frame(conn, select(s.topics.c.topic_id, s.topics.c.name, s.topics.c.name_en))
    stats = _old_topic_stats(valid, items, week_start).join(topics, on="topic_id", how="left")
    return {
        k[0]: tuple(
            TopicStats(
                topic_id=r["topic_id"],
                name=r["name"] or f"#{r['topic_id']}",
                name_en=r["name_en"],
                week_attempts=int(r["week_attempts"]),
                week_correct=int(r["week_correct"]),
                week_minutes=float(r["week_minutes"] or 0.0),
                n=int(r["n"]),
                n_correct=int(r["n_correct"]),
                theta=r["theta"],
                se=r["se"],
            )
            for r in g.sort("topic_id").iter_rows(named=True)
        )
        for k, g in stats.group_by("user_id")
    }


def same_topics(a: tuple[TopicStats, ...], b: tuple[TopicStats, ...]) -> bool:
    """Equal topic by topic: every field exactly, theta and se to 1e-12."""

    def key(t: TopicStats) -> tuple:
        return dataclasses.replace(t, theta=None, se=None)

    return len(a) == len(b) and all(
        key(x) == key(y)
        and (x.theta is None) == (y.theta is None)
        and (x.theta is None or x.theta == pytest.approx(y.theta, rel=1e-12, abs=1e-12))
        and (x.se is None or x.se == pytest.approx(y.se, rel=1e-12, abs=1e-12))
        for x, y in zip(a, b, strict=True)
    )


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> str:
    """400 students x 5 weeks, calibrated and scored weekly; topic_ability of the last week."""
    from seedtest_assets.core.warehouse import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('topic') / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    load(engine, generate(SyntheticConfig(n_users=400, weeks=5, seed=13, start=START)))
    for week in WEEKS:
        calibrate_week(engine, week, now=NOW)
        score_week(engine, week, now=NOW)
    materialize_week(engine, WEEKS[-1], now=NOW)
    engine.dispose()
    return url


@pytest.mark.parametrize(
    "selection",
    [
        pytest.param(Selection(max_users=10_000), id="the-weekly-batch"),
        pytest.param(Selection(active_only=False, max_users=10_000), id="everyone"),
        pytest.param(
            Selection(user_ids=("u-000003", "u-000017", "u-000250"), active_only=False),
            id="a-few-students",
        ),
    ],
)
def test_report_inputs_and_content_are_identical_to_the_in_batch_irt(population, selection):
    engine = make_engine(population)
    week = WEEKS[-1]
    students = select_students(engine, week, selection).frame
    ids = students["user_id"].to_list()
    assert len(ids) >= 3
    inputs = read_inputs(engine, week, students, now=NOW)
    before = old_topics(engine, week, ids, NOW)
    with_theta = compared = 0
    for inp in inputs:
        # Every field exactly, but theta and se to 1e-12: scoring a different batch of students
        # may sum in another order (a BLAS kernel's blocking), which moves the last bits.
        assert same_topics(inp.topics, before.get(inp.user_id, ())), inp.user_id
        compared += len(inp.topics)
        with_theta += sum(t.theta is not None for t in inp.topics)
        old = inp.__class__(**{**inp.__dict__, "topics": before.get(inp.user_id, ())})
        for lang in ("ko", "en"):
            assert build_report(inp, lang, NOW) == build_report(old, lang, NOW)
    assert compared > len(ids) and with_theta > 0.9 * compared
    engine.dispose()


def test_a_large_selection_reads_the_window_once_with_the_same_inputs(population, monkeypatch):
    """More students than one id chunk: one read of the whole window, filtered to them,
    gives every student exactly the inputs of the chunked, filtered reads."""
    import seedtest_assets.core.report_artifacts.pipeline as pipeline

    engine = make_engine(population)
    week = WEEKS[-1]
    students = select_students(engine, week, Selection(max_users=10_000)).frame
    assert students.height > 100
    chunked = read_inputs(engine, week, students, now=NOW)
    reads: list[object] = []
    real = pipeline.read_valid_attempts

    def counting(*args, **kw):
        reads.append(kw.get("user_ids"))
        return real(*args, **kw)

    monkeypatch.setattr(pipeline, "ID_CHUNK", 50)
    monkeypatch.setattr(pipeline, "read_valid_attempts", counting)
    whole = read_inputs(engine, week, students, now=NOW)
    assert reads == [None]  # one unfiltered read instead of a read per 50 students
    assert [i.user_id for i in whole] == [i.user_id for i in chunked]
    for a, b in zip(whole, chunked, strict=True):
        assert a.__dict__.keys() == b.__dict__.keys()
        for key in a.__dict__:
            if key == "topics":
                assert same_topics(a.topics, b.topics), a.user_id
            else:
                assert a.__dict__[key] == b.__dict__[key], (a.user_id, key)
    engine.dispose()


def test_a_missing_partition_names_the_asset_to_materialize(sqlite_url):
    seed_week(sqlite_url, topic_ability=False)
    engine = make_engine(sqlite_url)
    now = datetime(2026, 3, 9, 4, 0)
    with pytest.raises(TopicAbilityMissingError) as info:
        run_batch(engine, WEEK, Selection(), store=None, now=now)
    message = str(info.value)
    assert "topic_ability" in message and WEEK.isoformat() in message
    assert "materialize" in message and "mirt_weekly_job" in message
    # Materialized: the batch runs (and a week without item parameters needs none).
    materialize_week(engine, WEEK, now=now)
    assert not run_batch(engine, WEEK, Selection(), store=None, now=now).failures
    with transaction(engine) as conn:
        conn.execute(s.topic_ability.delete())
        conn.execute(s.mirt_item_params.delete())
    inputs = read_inputs(engine, WEEK, select_students(engine, WEEK, Selection()).frame, now=now)
    assert inputs and all(t.theta is None for i in inputs for t in i.topics)
    engine.dispose()
