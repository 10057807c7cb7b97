"""One student must not move everyone's scale (finding 5).

A bot answering items at random, as the student with the first user id, on a generated
population of 300 students x 4 weeks (10,015 responses). Measured (the figures below and in
``mirt_item_params/share.py``): link A / B of the last week and the correlation of the 2PL
items' slopes with the truth.

- unflooded: A 1.13, B 0.12, slope correlation 0.58;
- 20,000 responses in one day: unprotected 2.35 / -0.37 / 0.32 (what the issue saw, at 67% of
  the window); now the student-day is quarantined and the calibration is the unflooded one;
- 900 a day for 20 days (under the per-day limits, 18,000 responses): unprotected 2.17 /
  -0.36 / 0.33; capped at 3% of the others' responses (297 kept) 1.12 / 0.08 / 0.54.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from seedtest_assets.core.attempts import ValidationLimits
from seedtest_assets.core.mirt_item_params.pipeline import CalibrationRun, calibrate_week
from seedtest_assets.core.mirt_item_params.share import cap_student_responses, student_caps
from seedtest_assets.core.synthetic import Population, SyntheticConfig, generate, load
from seedtest_assets.core.synthetic.generate import format_id
from seedtest_assets.core.warehouse import insert_frame, make_engine
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.resources import WarehouseResource

START = date(2026, 1, 5)
WEEKS = 4
LAST = START + timedelta(weeks=WEEKS - 1)
NOW = datetime.combine(START + timedelta(weeks=WEEKS), datetime.min.time())
#: Validation with the per-student-day limits switched off: the feed as it was trusted before.
NO_LIMITS = ValidationLimits(
    max_attempts_per_student_day=10**9, max_study_ms_per_student_day=10**12
)
NO_CAP = 1e9
#: The engine as the issue saw it (plain EM from a cold start, tol 1e-4; the default since
#: issue 18 is SQUAREM from last week's parameters, tol 3e-5). On the flooded window the cold
#: start stops at a lower local optimum (log-likelihood -19,919.0 against -19,901.7 warm; link
#: A 2.35 against 2.77): the reproduction pins the run the issue measured.
AS_REPORTED = {"accelerate": "none", "warm_start": False, "tol": 1e-4}


@pytest.fixture(scope="module")
def pop() -> Population:
    return generate(SyntheticConfig(n_users=300, weeks=WEEKS, seed=3, start=START))


def bot(pop: Population, per_day: int, days: list[date]) -> pl.DataFrame:
    """``per_day`` random answers (a coin flip each, 1.5 s apart from 01:00 UTC) per day."""
    rng = np.random.default_rng(1)
    items, uid = pop.truth_items, pop.users["user_id"][0]
    first = int(pop.attempts["id"].max()) + 1
    frames = []
    for k, day in enumerate(days):
        pick = rng.integers(0, items.height, per_day)
        t0 = datetime.combine(day, datetime.min.time()) + timedelta(hours=1)
        frames.append(
            pl.DataFrame(
                {
                    "id": np.arange(per_day) + first + k * per_day,
                    "user_id": uid,
                    "session_id": format_id("session_id", 10**9),  # no generated session
                    "item_id": items["item_id"].to_numpy()[pick],
                    "topic_id": items["topic_id"].to_numpy()[pick],
                    "is_correct": rng.random(per_day) < 0.5,
                    "response_time_ms": 1_500,
                    "hints_used": 0,
                    "attempted_at": [t0 + timedelta(seconds=1.5 * i) for i in range(per_day)],
                },
                schema=pop.attempts.schema,
            )
        )
    return pl.concat(frames)


def day_flood(pop: Population) -> pl.DataFrame:
    return bot(pop, 20_000, [LAST + timedelta(days=2)])


def slow_flood(pop: Population) -> pl.DataFrame:
    end = START + timedelta(weeks=WEEKS)
    return bot(pop, 900, [end - timedelta(days=d) for d in range(20, 0, -1)])


def calibrate_weeks(url: str, pop: Population, extra: pl.DataFrame | None, **kw) -> CalibrationRun:
    """Load the population (replacing), add ``extra`` attempts, calibrate every week in order
    (each links to the one before); the last week's run."""
    engine = make_engine(url)
    load(engine, pop, replace=True)
    if extra is not None:
        with engine.begin() as conn:
            insert_frame(conn, s.attempts, extra)
    for w in range(WEEKS):
        run = calibrate_week(engine, START + timedelta(weeks=w), now=NOW, **kw)
    engine.dispose()
    return run


def slope_corr(run: CalibrationRun, pop: Population) -> float:
    truth = pop.truth_items.filter(pl.col("model") == "2PL")
    items = run.params.filter(~pl.col("flagged")).join(truth, on="item_id", suffix="_true")
    return float(np.corrcoef(items["a"], items["a_true"])[0, 1])


def figures(run: CalibrationRun, pop: Population) -> tuple[float, float, float]:
    return run.link.A, run.link.B, slope_corr(run, pop)


def test_a_flood_in_one_day_no_longer_moves_the_scale(warehouse_url, pop):
    base = figures(calibrate_weeks(warehouse_url, pop, None), pop)
    unprotected = figures(
        calibrate_weeks(
            warehouse_url,
            pop,
            day_flood(pop),
            limits=NO_LIMITS,
            max_student_share=NO_CAP,
            **AS_REPORTED,
        ),
        pop,
    )
    run = calibrate_weeks(warehouse_url, pop, day_flood(pop))
    fixed = figures(run, pop)

    assert base == pytest.approx((1.13, 0.12, 0.58), abs=0.01)
    assert unprotected == pytest.approx((2.35, -0.37, 0.32), abs=0.01)  # the reproduction
    assert fixed == pytest.approx(base, abs=1e-9)  # the flooded day is quarantined whole
    assert run.student_days.select("attempts").rows() == [(20_000,)]
    assert not run.student_cap.applied


def test_a_slow_flood_within_the_day_limits_is_capped(sqlite_url, pop):
    base = figures(calibrate_weeks(sqlite_url, pop, None), pop)
    unprotected = figures(
        calibrate_weeks(sqlite_url, pop, slow_flood(pop), max_student_share=NO_CAP, **AS_REPORTED),
        pop,
    )
    run = calibrate_weeks(sqlite_url, pop, slow_flood(pop))
    fixed = figures(run, pop)

    assert unprotected == pytest.approx((2.17, -0.36, 0.33), abs=0.01)
    assert fixed == pytest.approx((1.12, 0.08, 0.54), abs=0.01)
    assert abs(fixed[0] - base[0]) < 0.05 and abs(fixed[1] - base[1]) < 0.05
    assert fixed[2] > base[2] - 0.05
    assert run.student_days.height == 0  # 900 a day is within the per-day limits
    cap = run.student_cap
    [(user, responses, kept)] = cap.capped.rows()
    assert user == pop.users["user_id"][0] == format_id("user_id", 1) and responses > 18_000
    assert kept == int(0.03 * (cap.responses_after - kept))  # 3% of everyone else's
    assert cap.largest_share_before > 0.6 and cap.largest_share_after < 0.03


def test_the_cap_is_in_the_metadata_and_the_student_share_check_warns(sqlite_url, pop):
    engine = make_engine(sqlite_url)
    load(engine, pop, replace=True)
    with engine.begin() as conn:
        insert_frame(conn, s.attempts, slow_flood(pop))
        insert_frame(conn, s.attempts, day_flood(pop).with_columns(pl.col("id") + 10**6))
    engine.dispose()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [mirt_item_params],
            resources={"warehouse": WarehouseResource(database_url=sqlite_url)},
            instance=instance,
            partition_key=LAST.isoformat(),
        )
    meta = result.asset_materializations_for_node("mirt_item_params")[0].metadata
    cap = meta["student_cap"].value
    assert cap["capped_students"] == 1 and cap["max_share_of_others"] == 0.03
    assert cap["dropped_responses"] > 16_000 and cap["largest_share_after"] < 0.03
    assert meta["quarantined_student_days"].value == 1
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    share = checks["student_share"]
    assert not share.passed and share.severity == dg.AssetCheckSeverity.WARN
    [sample] = share.metadata["sample_capped_students"].value
    assert sample.startswith(f"student {pop.users['user_id'][0]}: ")
    [day] = share.metadata["sample_quarantined_student_days"].value
    assert day.endswith(": 20900 attempts, 8.7 h")  # the slow flood's 900 of that day too
    assert checks["converged"].passed and checks["plausible_parameters"].passed


# --------------------------------------------------------------------------- the rule alone
def test_caps_are_relative_to_the_others_with_a_floor():
    # 100 students of 50 responses and one of 100,000: the flood cannot raise its own cap.
    counts = np.array([50] * 100 + [100_000])
    kept = student_caps(counts, 0.03, 100)
    assert (kept[:100] == 50).all() and kept[100] == 150  # 3% of 5,000
    assert (student_caps(np.array([500, 40, 30]), 0.03, 100) == [100, 40, 30]).all()  # floor
    balanced = np.full(300, 40)
    assert (student_caps(balanced, 0.03, 100) == balanced).all()


def test_a_capped_student_keeps_responses_spread_over_the_window_in_order():
    t0 = datetime(2026, 3, 2)
    rows = pl.DataFrame(
        {
            "id": list(range(1_000)) + list(range(1_000, 1_100)),
            "user_id": [1] * 1_000 + [2] * 100,
            "attempted_at": [t0 + timedelta(hours=i) for i in range(1_000)]
            + [t0 + timedelta(hours=i) for i in range(100)],
        }
    ).sample(fraction=1.0, shuffle=True, seed=3)
    kept, cap = cap_student_responses(rows, max_share=0.03, floor=100)
    mine = kept.filter(pl.col("user_id") == 1).sort("attempted_at")
    assert cap.capped.rows() == [(1, 1_000, 100)]  # the floor: max(100, 3% of 100)
    assert mine.height == 100
    gaps = mine["attempted_at"].diff().drop_nulls().dt.total_hours().to_list()
    assert gaps == [10] * 99  # one every 10 hours: the whole window, not its first days
    assert kept.filter(pl.col("user_id") == 2).height == 100
    assert kept.columns == rows.columns
