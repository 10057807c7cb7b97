from datetime import date, datetime, timedelta

import polars as pl
import pytest

from seedtest_assets.features_topic_daily import FEATURES_SCHEMA, compute_features
from seedtest_assets_tests.factories import DAY, at, attempts_frame

COMPUTED = datetime(2026, 3, 3, 1, 15)


def run(rows, start=DAY, end=None, **kw):
    end = end or start + timedelta(days=1)
    return compute_features(attempts_frame(rows), start=start, end=end, computed_at=COMPUTED, **kw)


def test_hand_computed_day():
    rows = [
        {
            "id": 1,
            "user_id": 1,
            "is_correct": True,
            "response_time_ms": 4000,
            "attempted_at": at(DAY, 9),
        },
        {
            "id": 2,
            "user_id": 1,
            "is_correct": False,
            "response_time_ms": 8000,
            "hints_used": 1,
            "attempted_at": at(DAY, 9, 5),
        },
        {
            "id": 3,
            "user_id": 1,
            "is_correct": True,
            "response_time_ms": 1000,
            "hints_used": 2,
            "attempted_at": at(DAY, 9, 7),
        },
        {
            "id": 4,
            "user_id": 1,
            "is_correct": True,
            "response_time_ms": 2000,
            "attempted_at": at(DAY, 9, 9),
        },
        {
            "id": 5,
            "user_id": 1,
            "topic_id": 2,
            "item_id": 200,
            "is_correct": False,
            "response_time_ms": 500,
            "attempted_at": at(DAY, 23, 59),
        },
    ]
    out = run(rows)
    assert out.schema == pl.Schema(FEATURES_SCHEMA)
    t1 = out.filter(pl.col("topic_id") == 1).row(0, named=True)
    assert (t1["attempts"], t1["correct"], t1["hints"]) == (4, 3, 3)
    assert t1["accuracy"] == pytest.approx(0.75)
    assert t1["rt_median"] == pytest.approx(3000.0)  # median of 1000, 2000, 4000, 8000
    assert t1["improvement"] is None  # no prior attempts on the topic
    assert t1["last_attempt_at"] == at(DAY, 9, 9)
    t2 = out.filter(pl.col("topic_id") == 2).row(0, named=True)
    assert (t2["attempts"], t2["correct"], t2["accuracy"], t2["rt_median"]) == (1, 0, 0.0, 500.0)
    assert t2["computed_at"] == COMPUTED


def test_improvement_uses_the_previous_seven_days_only():
    d = DAY
    rows = [
        # 8 days before: outside the window, must be ignored
        {"id": 1, "user_id": 1, "is_correct": True, "attempted_at": at(d - timedelta(days=8), 9)},
        # 7 days before and 1 day before: inside (1 of 4 correct -> 0.25)
        {"id": 2, "user_id": 1, "is_correct": True, "attempted_at": at(d - timedelta(days=7), 9)},
        {"id": 3, "user_id": 1, "is_correct": False, "attempted_at": at(d - timedelta(days=7), 10)},
        {"id": 4, "user_id": 1, "is_correct": False, "attempted_at": at(d - timedelta(days=1), 9)},
        {"id": 5, "user_id": 1, "is_correct": False, "attempted_at": at(d - timedelta(days=1), 10)},
        # the day: 2 of 2 correct
        {"id": 6, "user_id": 1, "is_correct": True, "attempted_at": at(d, 9)},
        {"id": 7, "user_id": 1, "is_correct": True, "attempted_at": at(d, 10)},
        # another topic's history must not leak in
        {
            "id": 8,
            "user_id": 1,
            "topic_id": 2,
            "item_id": 200,
            "is_correct": True,
            "attempted_at": at(d - timedelta(days=2), 9),
        },
    ]
    out = run(rows)
    assert out.height == 1  # only the requested day is output
    assert out["improvement"].item() == pytest.approx(1.0 - 0.25)


def test_range_output_has_each_day_and_rolls_the_window():
    rows = [
        {"id": 1, "user_id": 1, "is_correct": False, "attempted_at": at(DAY, 9)},
        {"id": 2, "user_id": 1, "is_correct": True, "attempted_at": at(DAY + timedelta(days=1), 9)},
        {"id": 3, "user_id": 1, "is_correct": True, "attempted_at": at(DAY + timedelta(days=2), 9)},
    ]
    out = run(rows, start=DAY, end=DAY + timedelta(days=3))
    assert out["date"].to_list() == [DAY + timedelta(days=i) for i in range(3)]
    # day 2: 1 - 0/1 = 1.0 ; day 3: 1 - (0+1)/2 = 0.5
    assert out["improvement"].to_list() == [None, pytest.approx(1.0), pytest.approx(0.5)]


def test_lookback_is_configurable():
    rows = [
        {
            "id": 1,
            "user_id": 1,
            "is_correct": False,
            "attempted_at": at(DAY - timedelta(days=3), 9),
        },
        {"id": 2, "user_id": 1, "is_correct": True, "attempted_at": at(DAY, 9)},
    ]
    assert run(rows, lookback_days=2)["improvement"].item() is None
    assert run(rows, lookback_days=3)["improvement"].item() == pytest.approx(1.0)


def test_empty_input_gives_empty_frame_with_schema():
    out = run([])
    assert out.height == 0 and out.schema == pl.Schema(FEATURES_SCHEMA)


def test_days_are_utc_calendar_days():
    rows = [
        {"id": 1, "user_id": 1, "attempted_at": datetime(2026, 3, 2, 23, 59, 59)},
        {"id": 2, "user_id": 1, "attempted_at": datetime(2026, 3, 3, 0, 0, 0)},
    ]
    out = run(rows, start=date(2026, 3, 2), end=date(2026, 3, 4))
    assert out["attempts"].to_list() == [1, 1]
