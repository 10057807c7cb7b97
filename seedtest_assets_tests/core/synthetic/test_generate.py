"""The synthetic generator: determinism, schema, and that its ground truth is really true."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import mannwhitneyu

from seedtest_assets.core.synthetic import Population, SyntheticConfig, generate
from seedtest_assets.core.synthetic.generate import format_id, p_correct
from seedtest_assets.core.warehouse import schema

START = date(2026, 3, 2)  # a Monday
HANGUL = re.compile(r"^[\uac00-\ud7a3]+$")


@pytest.fixture(scope="module")
def small() -> Population:
    return generate(SyntheticConfig(n_users=300, weeks=4, seed=11, start=START))


@pytest.fixture(scope="module")
def big() -> Population:
    """Large enough for statistics (~100k attempts, well under a second)."""
    return generate(SyntheticConfig(n_users=2000, weeks=6, seed=3, start=START))


def _week_start(col: str) -> pl.Expr:
    return pl.col(col).dt.truncate("1w").dt.date()  # polars weeks start on Monday


def _with_truth(pop: Population) -> pl.DataFrame:
    """Attempts joined with the item parameters and the student's theta of that week."""
    return (
        pop.attempts.with_columns(_week_start("attempted_at").alias("week_start"))
        .join(pop.truth_items.select("item_id", "a", "b", "c"), on="item_id")
        .join(pop.truth_theta_weekly, on=["user_id", "week_start"])
    )


# --------------------------------------------------------------------------- structure
def test_same_config_gives_identical_frames(small: Population) -> None:
    again = generate(SyntheticConfig(n_users=300, weeks=4, seed=11, start=START))
    for name, frame in small.tables().items():
        assert frame.equals(again.tables()[name]), name
    other = generate(SyntheticConfig(n_users=300, weeks=4, seed=12, start=START))
    assert not small.attempts.equals(other.attempts)
    assert not small.truth_users.equals(other.truth_users)


def test_frames_are_the_warehouse_tables_in_load_order(small: Population) -> None:
    # (Their dtypes are schema.polars_schema of the tables: generate.SCHEMAS is derived.)
    tables = {t.name: t for t in (*schema.SOURCE_TABLES, *schema.TRUTH_TABLES)}
    frames = small.tables()
    assert list(frames) == [
        "organizations",
        "users",
        "topics",
        "items",
        "exam_sessions",
        "attempts",
        "truth_items",
        "truth_users",
        "truth_theta_weekly",
    ]
    assert set(frames) == set(tables)
    for name, frame in frames.items():
        required = [c.name for c in tables[name].columns if not c.nullable]
        assert frame.select(pl.col(required).null_count().sum()).row(0) == (0,) * len(required)


def test_period_and_default_start() -> None:
    cfg = SyntheticConfig(n_users=10, weeks=4, seed=1)
    assert cfg.resolved_start(today=date(2026, 3, 4)) == date(2026, 2, 2)
    assert cfg.resolved_start(today=date(2026, 3, 2)) == date(2026, 2, 2)
    pop = generate(cfg)
    assert pop.start.weekday() == 0
    assert pop.end == pop.start + timedelta(weeks=4)
    with pytest.raises(ValueError, match="Monday"):
        SyntheticConfig(start=date(2026, 3, 3))
    assert SyntheticConfig(n_users=100_000).resolved_n_items() == 2000
    assert SyntheticConfig(n_users=300).resolved_n_items() == 200


def test_everything_happens_inside_the_period(small: Population) -> None:
    lo, hi = pl.lit(small.start).cast(pl.Datetime("us")), pl.lit(small.end).cast(pl.Datetime("us"))
    a, s = small.attempts, small.exam_sessions
    assert a.filter((pl.col("attempted_at") < lo) | (pl.col("attempted_at") >= hi)).is_empty()
    assert s.filter((pl.col("started_at") < lo) | (pl.col("completed_at") >= hi)).is_empty()
    assert set(small.truth_theta_weekly["week_start"].unique()) == {
        small.start + timedelta(weeks=w) for w in range(4)
    }
    assert small.truth_theta_weekly.height == 300 * 4


def test_ids_follow_time(big: Population) -> None:
    a = big.attempts
    assert a["id"].to_list() == list(range(1, a.height + 1))
    assert a["attempted_at"].is_sorted()
    s = big.exam_sessions
    assert s["session_id"].to_list() == [format_id("session_id", i) for i in range(1, s.height + 1)]
    assert s["started_at"].is_sorted()
    # Within a session answers are strictly increasing and bounded by the session.
    per = a.group_by("session_id").agg(
        pl.col("attempted_at").diff().min().alias("min_gap"),
        pl.col("attempted_at").min().alias("first"),
        pl.col("attempted_at").max().alias("last"),
        pl.col("user_id").n_unique().alias("users"),
        pl.col("user_id").first(),
        pl.len().alias("n"),
        pl.col("item_id").n_unique().alias("distinct_items"),
    )
    joined = per.join(s, on="session_id", suffix="_s")
    assert joined.height == s.height  # every session has attempts, and no orphan attempts
    assert (joined["min_gap"].drop_nulls() >= timedelta(seconds=1)).all()
    assert (joined["users"] == 1).all() and (joined["user_id"] == joined["user_id_s"]).all()
    assert (joined["first"] > joined["started_at"]).all()
    done = joined.filter(pl.col("completed_at").is_not_null())
    assert (done["last"] == done["completed_at"]).all()
    assert 0.01 < 1 - done.height / joined.height < 0.06  # a few % abandoned
    assert (joined["n"] == joined["distinct_items"]).all()  # no item twice in a session
    assert (joined["n"] <= 20).all() and (joined["n"] >= 5).mean() > 0.99


def test_topic_is_the_items_topic(big: Population) -> None:
    j = big.attempts.join(big.items, on="item_id", suffix="_item", how="left")
    assert j["topic_id_item"].null_count() == 0
    assert (j["topic_id"] == j["topic_id_item"]).all()
    assert big.truth_items.select("item_id", "topic_id").equals(big.items)


def test_reference_tables_look_korean(small: Population) -> None:
    t = small.topics
    assert 10 <= t.height <= 15 and t["name"].n_unique() == t.height
    assert all(HANGUL.match(n.replace(" ", "")) for n in t["name"])
    assert t["name_en"].null_count() == 0
    o = small.organizations
    assert 20 <= o.height <= 50 and o["name"].n_unique() == o.height
    assert all(re.match(r"^[가-힣]+ [가-힣]+$", n) for n in o["name"])
    u = small.users
    assert all(HANGUL.match(n) and len(n) == 3 for n in u["display_name"])
    assert set(u["org_id"]) <= set(o["org_id"])
    assert 0.05 < u["goal_theta"].null_count() / u.height < 0.3
    assert (u["goal_theta"].is_null() == u["goal_date"].is_null()).all()


def test_students_are_created_before_they_practise(big: Population) -> None:
    first = big.exam_sessions.group_by("user_id").agg(pl.col("started_at").min().alias("first"))
    j = big.users.join(first, on="user_id")
    assert (j["created_at"] < j["first"]).all()
    joined_during = big.users.filter(pl.col("created_at") >= pl.lit(big.start))
    assert 0.1 < joined_during.height / big.users.height < 0.3
    # At most one session per student per day.
    s = big.exam_sessions.with_columns(pl.col("started_at").dt.date().alias("day"))
    assert s.select(pl.struct("user_id", "day").is_unique().all()).item()


# --------------------------------------------------------------------------- IRT truth
def test_item_parameters(big: Population) -> None:
    ti = big.truth_items
    assert ti["a"].min() >= 0.4 and ti["a"].max() <= 2.5
    assert 1.0 < ti["a"].median() < 1.4
    two, three = ti.filter(pl.col("model") == "2PL"), ti.filter(pl.col("model") == "3PL")
    assert two.height + three.height == ti.height
    assert (two["c"] == 0).all() and (three["c"] > 0).all() and (three["c"] < 0.6).all()
    assert 0.15 < three.height / ti.height < 0.35
    assert 0.15 < three["c"].mean() < 0.3


def test_accuracy_matches_the_response_model(big: Population) -> None:
    j = _with_truth(big)
    assert j.height == big.attempts.height > 50_000
    p = p_correct(*(j[c].to_numpy() for c in ("theta", "a", "b", "c")))
    y = j["is_correct"].to_numpy()
    assert abs(y.mean() - p.mean()) < 0.01
    # Calibrated across the range, not only on average.
    bins = np.digitize(p, [0.2, 0.4, 0.6, 0.8])
    for k in range(5):
        sel = bins == k
        assert sel.sum() > 1000
        assert abs(y[sel].mean() - p[sel].mean()) < 0.03, k


def test_harder_items_take_longer_and_draw_hints(big: Population) -> None:
    j = _with_truth(big).with_columns((pl.col("b") - pl.col("theta")).alias("rel"))
    hard = j.filter(pl.col("rel") > 0.5)
    easy = j.filter(pl.col("rel") < -0.5)
    assert hard.height > 5000 and easy.height > 5000
    assert hard["response_time_ms"].median() > 1.2 * easy["response_time_ms"].median()
    assert 20_000 < j["response_time_ms"].median() < 60_000
    assert j["response_time_ms"].min() >= 1_000 and j["response_time_ms"].max() <= 600_000
    assert (hard["hints_used"] > 0).mean() > (easy["hints_used"] > 0).mean()
    wrong = j.filter(~pl.col("is_correct"))
    right = j.filter(pl.col("is_correct"))
    assert (wrong["hints_used"] > 0).mean() > (right["hints_used"] > 0).mean()
    assert (j["hints_used"] == 0).mean() > 0.8


# --------------------------------------------------------------------------- churn and goals
def test_churned_students_never_come_back(big: Population) -> None:
    last = big.attempts.group_by("user_id").agg(pl.col("attempted_at").max().alias("last"))
    tu = big.truth_users.join(last, on="user_id", how="left")
    churned = tu.filter(pl.col("churn_week").is_not_null())
    assert 0.15 < churned.height / tu.height < 0.35
    assert (churned["churn_week"].dt.weekday() == 1).all()  # Mondays
    assert (churned["churn_week"] < big.end).all()
    after = churned.filter(pl.col("last") >= pl.col("churn_week").cast(pl.Datetime("us")))
    assert after.is_empty()
    # churn_week is the first Monday with no more activity: the Monday after the last attempt.
    active = churned.filter(pl.col("last").is_not_null())
    monday_after = active["last"].dt.truncate("1w").dt.date() + timedelta(weeks=1)
    assert (monday_after == active["churn_week"]).all()


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for labels ``y`` (Mann-Whitney U / n1 n0)."""
    return float(mannwhitneyu(score[y], score[~y]).statistic / (y.sum() * (~y).sum()))


def test_churn_is_predictable_from_observables() -> None:
    """As of week 4, who leaves within two weeks? Recent practice and ability both tell."""
    pop = generate(SyntheticConfig(n_users=10_000, weeks=8, seed=21, start=START))
    tu = pop.truth_users
    churned = tu["churn_week"].is_not_null()
    assert tu.filter(churned)["theta0"].mean() < tu.filter(~churned)["theta0"].mean() - 0.2
    grow = tu["growth_per_week"]
    assert grow.filter(churned).mean() < grow.filter(~churned).mean() - 0.01

    w = 4
    asof = START + timedelta(weeks=w)
    week = (pl.col("started_at").dt.date() - START).dt.total_days() // 7
    practice = pop.exam_sessions.group_by("user_id").agg(
        week.is_between(w - 2, w - 1).sum().alias("recent"), (week < w).sum().alias("before")
    )
    u = (
        tu.join(pop.users, on="user_id")
        .join(practice, on="user_id")
        .filter(
            (pl.col("created_at") < pl.lit(START))  # members for the whole look-back
            & (pl.col("before") > 0)
            & (pl.col("churn_week").is_null() | (pl.col("churn_week") > asof))  # still here
        )
    )
    leaves = (u["churn_week"] <= asof + timedelta(weeks=2)).fill_null(False).to_numpy()
    assert 200 < leaves.sum() < 0.2 * leaves.size
    # Sessions fade before leaving: fewer recent sessions means higher risk.
    assert _auc(-u["recent"].to_numpy().astype(float), leaves) > 0.62
    assert _auc(-u["theta0"].to_numpy(), leaves) > 0.62


def _theta_rule(pop: Population) -> pl.DataFrame:
    """The documented ability rule, re-implemented from the frames alone.

    theta(t) = theta0 + g * max(0, min(t, t_stop) - j0), t in weeks since start, j0 the join
    week (from created_at), t_stop = churn week index - 1 for churners, +inf otherwise.
    """
    start = pl.lit(pop.start)
    return pop.truth_users.join(pop.users, on="user_id").with_columns(
        ((pl.col("created_at").dt.date() - start).dt.total_days() // 7).clip(0).alias("j0"),
        pl.when(pl.col("churn_week").is_null())
        .then(float("inf"))
        .otherwise((pl.col("churn_week") - start).dt.total_days() / 7 - 1)
        .alias("t_stop"),
        ((pl.col("goal_date") - start).dt.total_days() / 7).alias("t_goal"),
    )


def _theta_at(t: pl.Expr) -> pl.Expr:
    return pl.col("theta0") + pl.col("growth_per_week") * pl.max_horizontal(
        0.0, pl.min_horizontal(t, pl.col("t_stop")) - pl.col("j0")
    )


def test_reached_goal_follows_the_documented_rule(big: Population) -> None:
    u = _theta_rule(big).with_columns(
        (pl.col("goal_theta").is_not_null() & (_theta_at(pl.col("t_goal")) >= pl.col("goal_theta")))
        .fill_null(False)
        .alias("expected")
    )
    assert (u["expected"] == u["reached_goal"]).all()
    assert 0.05 < u["reached_goal"].mean() < 0.6  # both outcomes are common
    assert not u.filter(pl.col("goal_theta").is_null())["reached_goal"].any()
    g = u.filter(pl.col("goal_theta").is_not_null())
    assert (g["goal_date"] >= big.start + timedelta(weeks=4)).all()
    assert (g["goal_date"] <= big.end + timedelta(weeks=16)).all()
    gain = g["goal_theta"] - g["theta0"]
    assert gain.min() > 0.29 and gain.max() < 1.51


def test_weekly_theta_follows_the_rule(big: Population) -> None:
    rule = _theta_rule(big).select("user_id", "theta0", "growth_per_week", "j0", "t_stop")
    w = big.truth_theta_weekly.join(rule, on="user_id").with_columns(
        ((pl.col("week_start") - big.start).dt.total_days() / 7).alias("t")
    )
    expected = w.select(_theta_at(pl.col("t"))).to_series()
    assert np.allclose(w["theta"].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
    # Churned students' ability is frozen from their churn week on.
    frozen = (
        w.filter(pl.col("t") >= pl.col("t_stop"))
        .group_by("user_id")
        .agg(pl.col("theta").n_unique())
    )
    assert frozen.height > 0 and (frozen["theta"] == 1).all()
    theta0 = big.truth_users["theta0"]
    assert abs(theta0.mean()) < 0.1 and 0.9 < theta0.std() < 1.1
    assert 0.04 < big.truth_users["growth_per_week"].mean() < 0.06


def test_ids_are_product_like_text_and_the_integer_style_writes_the_same_numbers() -> None:
    text_pop = generate(SyntheticConfig(n_users=40, weeks=1, seed=3, start=date(2026, 3, 2)))
    ints = generate(
        SyntheticConfig(n_users=40, weeks=1, seed=3, start=date(2026, 3, 2), id_style="integer")
    )
    assert text_pop.users["user_id"][:2].to_list() == ["u-000001", "u-000002"]
    assert text_pop.items["item_id"][0] == "i-00001"
    assert text_pop.topics["topic_id"][0] == "t-01"
    assert text_pop.organizations["org_id"][0] == "org-001"
    assert text_pop.exam_sessions["session_id"][0] == "s-00000001"
    for name, frame in text_pop.tables().items():
        other = ints.tables()[name]
        assert frame.schema == other.schema  # text either way
        for col in ("user_id", "org_id", "session_id", "item_id", "topic_id"):
            if col in frame.columns:
                # The same entity numbers, only written differently.
                number = frame[col].str.extract(r"(\d+)$").cast(pl.Int64)
                assert number.to_list() == other[col].cast(pl.Int64).to_list()
    with pytest.raises(ValueError, match="id_style"):
        SyntheticConfig(id_style="uuid")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- planted DIF
def test_planted_dif_moves_only_those_items_answers_in_the_focal_organisations() -> None:
    """The same seed with and without planted DIF: the same students, organisations, items
    and items chosen per session; an answer differs only for a DIF item in a focal
    organisation, and only in the shift's direction (the same uniform draw against a lower
    or higher chance)."""
    cfg = dict(n_users=2000, weeks=3, seed=4, start=START, n_orgs=6)
    plain = generate(SyntheticConfig(**cfg))
    planted = generate(SyntheticConfig(**cfg, dif_items=5, dif_shift=0.9))
    assert plain.truth_dif.height == 0
    for name in ("organizations", "users", "items", "truth_items", "truth_users"):
        assert plain.tables()[name].equals(planted.tables()[name]), name
    truth = planted.truth_dif
    assert truth["item_id"].n_unique() == 5 and truth["org_id"].n_unique() == 3  # half of 6
    assert set(truth["b_shift"].abs().to_list()) == {0.9}
    dif_items = planted.truth_items.filter(pl.col("item_id").is_in(truth["item_id"].implode()))
    assert (dif_items["model"] == "2PL").all() and (dif_items["b"].abs() < 1.5).all()

    # An item is never repeated inside a session: (session, item) keys an attempt.
    key = ["session_id", "item_id"]
    both = (
        plain.attempts.select(*key, "user_id", was="is_correct")
        .join(planted.attempts.select(*key, now="is_correct"), on=key, validate="1:1")
        .join(plain.users.select("user_id", "org_id"), on="user_id")
        .join(truth, on=["item_id", "org_id"], how="left")
    )
    assert both.height == plain.attempts.height == planted.attempts.height
    changed = both.filter(pl.col("was") != pl.col("now"))
    assert changed.height > 0 and changed["b_shift"].null_count() == 0
    harder = both.filter(pl.col("b_shift") > 0)
    easier = both.filter(pl.col("b_shift") < 0)
    assert not (harder["now"] & ~harder["was"]).any()  # harder: right can only become wrong
    assert not (easier["was"] & ~easier["now"]).any()
    assert harder["now"].sum() < harder["was"].sum() and easier["now"].sum() > easier["was"].sum()
