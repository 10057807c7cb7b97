"""Per-topic ability: known truth recovered, a hand-computed EAP, what is left out, and the
stored week (replace, empty weeks, refusals) on SQLite."""

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import delete, func, select

from seedtest_assets.core.attempts.read import read_valid_attempts
from seedtest_assets.core.irt import simulate_items, simulate_responses
from seedtest_assets.core.mirt_ability.pipeline import NoItemParamsError
from seedtest_assets.core.mirt_item_params.pipeline import calibrate_week, stored_item_params
from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.topic_ability.pipeline import (
    ABILITY_SCHEMA,
    materialize_week,
    topic_abilities,
    window,
)
from seedtest_assets.core.topic_ability.table import read_topic_ability
from seedtest_assets.core.warehouse import make_engine, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.db import EmptyReplaceError

TOPIC_SHIFT = {"t-1": -1.2, "t-2": 0.0, "t-3": 1.2}


def known_truth(n_users: int = 60, per_topic: int = 40, seed: int = 3):
    """Students whose ability differs by topic (a shift per topic plus a personal part):
    valid-attempt rows, the item parameters (one bank per topic), the true θ per pair."""
    rng = np.random.default_rng(seed)
    items, valid, truth = [], [], []
    for k, (topic, shift) in enumerate(TOPIC_SHIFT.items()):
        bank = simulate_items(80, seed=seed + k, item_id_start=10_000 * (k + 1))
        theta = shift + rng.normal(0.0, 0.6, n_users)
        # Text ids, as the product's: students u-001.., topics t-1..
        ids = [f"u-{i:03d}" for i in range(1, n_users + 1)]
        users = pl.DataFrame({"user_id": ids, "theta": theta})
        resp = simulate_responses(bank, users, per_topic, seed=seed + 10 + k)
        items.append(bank.with_columns(flagged=pl.lit(False)))
        valid.append(resp.with_columns(topic_id=pl.lit(topic)))
        truth.append(users.with_columns(topic_id=pl.lit(topic)))
    return pl.concat(valid), pl.concat(items), pl.concat(truth)


def test_known_per_topic_abilities_are_recovered():
    valid, items, truth = known_truth()
    got = topic_abilities(valid, items)
    assert got.schema == pl.Schema(ABILITY_SCHEMA)
    assert got.height == truth.height  # one row per (student, topic)
    assert (got["n_responses"] == 40).all()
    both = got.join(truth, on=["user_id", "topic_id"], suffix="_true")
    err = (both["theta"] - both["theta_true"]).to_numpy()
    se = both["se"].to_numpy()
    assert np.all(np.isfinite(se)) and np.all((se > 0.2) & (se < 0.6))
    assert np.sqrt(np.mean(err**2)) < 0.45
    assert np.mean(np.abs(err) < 2.5 * se) > 0.95  # the SEs are honest
    assert np.corrcoef(both["theta"], both["theta_true"])[0, 1] > 0.9
    # The topic differences come through: per topic, the mean θ lands near the true shift.
    means = both.group_by("topic_id").agg(pl.col("theta").mean()).sort("topic_id")
    for topic, mean in means.iter_rows():
        assert mean == pytest.approx(TOPIC_SHIFT[topic], abs=0.3)


def test_a_hand_computed_eap():
    """One pair, two answers: right on an item at b = 0, wrong on one at b = 1 (a = 1): the
    posterior mean and SD by brute-force integration against a N(0, 1) prior."""
    items = pl.DataFrame(
        {"item_id": [1, 2], "a": [1.0, 1.0], "b": [0.0, 1.0], "c": [0.0, 0.0], "flagged": False}
    )
    valid = pl.DataFrame(
        {
            "user_id": ["test-user-123"] * 2,
            "topic_id": ["t-3"] * 2,
            "item_id": [1, 2],
            "is_correct": [True, False],
        }
    )
    grid = np.linspace(-10, 10, 200_001)
    p1, p2 = 1 / (1 + np.exp(-grid)), 1 / (1 + np.exp(-(grid - 1)))
    post = np.exp(-0.5 * grid**2) * p1 * (1 - p2)
    mean = (post * grid).sum() / post.sum()
    sd = np.sqrt((post * grid**2).sum() / post.sum() - mean**2)
    (row,) = topic_abilities(valid, items).iter_rows(named=True)
    assert (row["user_id"], row["topic_id"], row["n_responses"]) == ("test-user-123", "t-3", 2)
    assert row["theta"] == pytest.approx(mean, abs=1e-6)
    assert row["se"] == pytest.approx(sd, abs=1e-6)
    assert mean == pytest.approx(-0.0, abs=0.2) and 0.7 < sd < 0.9  # a sanity bound


def test_flagged_and_unknown_items_are_left_out_and_pairs_are_independent():
    valid, items, _ = known_truth(n_users=20)
    whole = topic_abilities(valid, items)
    # A pair's θ depends on its own answers only: a subset of students scores the same (to
    # the last bits: another batch may sum in another order inside a BLAS kernel).
    some = topic_abilities(valid.filter(pl.col("user_id") <= "u-005"), items)
    assert_frame_equal(
        some, whole.filter(pl.col("user_id") <= "u-005"), rel_tol=1e-12, abs_tol=1e-12
    )
    # Flagging an item = not knowing it: its answers are ignored.
    flagged_id = items["item_id"][0]
    flagged = items.with_columns(flagged=pl.col("item_id") == flagged_id)
    without = topic_abilities(valid, items.filter(pl.col("item_id") != flagged_id))
    assert_frame_equal(topic_abilities(valid, flagged), without, rel_tol=1e-12, abs_tol=1e-12)
    # A pair whose answers all went to unknown items has no θ and no row.
    stray = pl.DataFrame(
        {"user_id": ["u-999"], "topic_id": ["t-9"], "item_id": [-5], "is_correct": [True]},
        schema=valid.schema,
    )
    got = topic_abilities(pl.concat([valid, stray]), items)
    assert got.filter(pl.col("user_id") == "u-999").height == 0
    assert_frame_equal(got, whole, rel_tol=1e-12, abs_tol=1e-12)
    # Nothing to score: an empty, typed frame.
    assert topic_abilities(valid.head(0), items).schema == pl.Schema(ABILITY_SCHEMA)
    assert topic_abilities(valid, items.head(0)).height == 0
    assert topic_abilities(valid, items.with_columns(flagged=True)).height == 0


# --------------------------------------------------------------------------- the stored week
START = date(2026, 2, 23)
WEEKS = [START, START + timedelta(weeks=1)]
NOW = datetime(2026, 3, 9, 3, 0)


@pytest.fixture
def population(sqlite_url) -> str:
    engine = make_engine(sqlite_url)
    load(engine, generate(SyntheticConfig(n_users=120, weeks=2, seed=5, start=START)))
    for week in WEEKS:
        calibrate_week(engine, week, now=NOW)
    engine.dispose()
    return sqlite_url


def count(engine, week) -> int:
    t = s.topic_ability
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(t).where(t.c.week_start == week)
        ).scalar_one()


def test_materialize_week_stores_the_pure_frame_and_a_rerun_replaces(population):
    engine = make_engine(population)
    week = WEEKS[-1]
    run = materialize_week(engine, week, now=NOW)
    assert not run.note and run.items_week == week and run.version == f"2PL@{week}"
    start, end = window(week)
    expected = topic_abilities(
        read_valid_attempts(engine, start, end, now=NOW), stored_item_params(engine, week, "2PL")
    )
    with engine.connect() as conn:
        stored = read_topic_ability(conn, week, None)
        some = read_topic_ability(conn, week, expected["user_id"].unique().sort()[:3].to_list())
        assert read_topic_ability(conn, WEEKS[0] - timedelta(weeks=1), [1, 2]).height == 0
    assert stored.drop("week_start", "model", "version", "fitted_at").equals(expected)
    assert set(stored["version"]) == {run.version} and set(stored["fitted_at"]) == {NOW}
    assert stored.height == run.rows.height and run.students > 50 and run.topics > 1
    assert some["user_id"].n_unique() == 3
    # A re-run replaces the week (same keys, new fitted_at), other weeks untouched.
    materialize_week(engine, WEEKS[0], now=NOW)
    first = count(engine, WEEKS[0])
    later = NOW + timedelta(hours=1)
    materialize_week(engine, week, now=later)
    with engine.connect() as conn:
        again = read_topic_ability(conn, week, None)
    assert again.height == stored.height and set(again["fitted_at"]) == {later}
    assert again.drop("fitted_at").equals(stored.drop("fitted_at"))
    assert count(engine, WEEKS[0]) == first
    engine.dispose()


def test_empty_weeks_and_refusals(population):
    engine = make_engine(population)
    before = START - timedelta(weeks=20)  # nothing calibrated on or before it
    run = materialize_week(engine, before, now=NOW)
    assert run.rows.height == 0 and "no 2PL item parameters" in run.note
    assert count(engine, before) == 0
    with pytest.raises(ValueError, match="Monday"):
        materialize_week(engine, START + timedelta(days=1), now=NOW)
    # A week after the data (the latest calibration, no attempts in the window): empty, noted.
    late = START + timedelta(weeks=30)
    run = materialize_week(engine, late, now=datetime(2026, 12, 1))
    assert run.rows.height == 0 and "no valid attempts" in run.note
    # Stored rows are never replaced by nothing: the attempts vanish -> refusal, rows stay.
    week = WEEKS[-1]
    n = materialize_week(engine, week, now=NOW).rows.height
    with transaction(engine) as conn:
        conn.execute(delete(s.attempts))
    with pytest.raises(EmptyReplaceError, match="topic_ability"):
        materialize_week(engine, week, now=NOW)
    assert count(engine, week) == n
    with transaction(engine) as conn:
        conn.execute(delete(s.mirt_item_params))
    with pytest.raises(NoItemParamsError, match="refusing"):
        materialize_week(engine, week, now=NOW)
    assert count(engine, week) == n
    engine.dispose()
