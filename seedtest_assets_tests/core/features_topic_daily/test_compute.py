from datetime import date, datetime, timedelta

import polars as pl
import pytest

from seedtest_assets.core.features_topic_daily import (
    FEATURES_SCHEMA,
    HISTORY_SCHEMA,
    compute_features,
)
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
    t1 = out.filter(pl.col("topic_id") == "1").row(0, named=True)
    assert (t1["attempts"], t1["correct"], t1["hints"]) == (4, 3, 3)
    assert t1["accuracy"] == pytest.approx(0.75)
    assert t1["rt_median"] == pytest.approx(3000.0)  # median of 1000, 2000, 4000, 8000
    assert t1["improvement"] is None  # no prior attempts on the topic
    assert t1["last_attempt_at"] == at(DAY, 9, 9)
    t2 = out.filter(pl.col("topic_id") == "2").row(0, named=True)
    assert (t2["attempts"], t2["correct"], t2["accuracy"], t2["rt_median"]) == (1, 0, 0.0, 500.0)
    assert t2["computed_at"] == COMPUTED


def history(rows):
    """Stored daily rows (user, topic, date, attempts, correct) from tuples."""
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA, orient="row")


def test_improvement_uses_the_previous_seven_days_only():
    d = DAY
    prior = history(
        [
            (1, 1, d - timedelta(days=8), 5, 5),  # 8 days before: outside the window
            (1, 1, d - timedelta(days=7), 2, 1),  # inside: 1 of 4 correct overall -> 0.25
            (1, 1, d - timedelta(days=1), 2, 0),
            (1, 2, d - timedelta(days=2), 3, 3),  # another topic must not leak in
            (2, 1, d - timedelta(days=1), 4, 4),  # another student must not leak in
        ]
    )
    rows = [
        {"id": 6, "user_id": 1, "is_correct": True, "attempted_at": at(d, 9)},
        {"id": 7, "user_id": 1, "is_correct": True, "attempted_at": at(d, 10)},
        # raw history before the range is ignored: the stored features are the history
        {"id": 1, "user_id": 1, "is_correct": False, "attempted_at": at(d - timedelta(days=3), 9)},
    ]
    out = run(rows, prior=prior)
    assert out.height == 1  # only the requested day is output
    assert out["improvement"].item() == pytest.approx(1.0 - 0.25)


def test_range_output_has_each_day_and_rolls_the_window_over_its_own_days():
    rows = [
        {"id": 1, "user_id": 1, "is_correct": False, "attempted_at": at(DAY, 9)},
        {"id": 2, "user_id": 1, "is_correct": True, "attempted_at": at(DAY + timedelta(days=1), 9)},
        {"id": 3, "user_id": 1, "is_correct": True, "attempted_at": at(DAY + timedelta(days=2), 9)},
    ]
    prior = history([(1, 1, DAY - timedelta(days=1), 1, 1)])
    out = run(rows, start=DAY, end=DAY + timedelta(days=3), prior=prior)
    assert out["date"].to_list() == [DAY + timedelta(days=i) for i in range(3)]
    # day 1: 0 - 1/1 = -1 ; day 2: 1 - (1+0)/2 = 0.5 ; day 3: 1 - (1+0+1)/3 = 1/3
    assert out["improvement"].to_list() == pytest.approx([-1.0, 0.5, 1 / 3])


def test_stored_rows_inside_the_range_are_superseded_by_the_new_computation():
    # A re-run must not compare a day with its own previous (stale) version.
    rows = [
        {"id": 1, "user_id": 1, "is_correct": True, "attempted_at": at(DAY, 9)},
        {"id": 2, "user_id": 1, "is_correct": True, "attempted_at": at(DAY + timedelta(days=1), 9)},
    ]
    stale = history([(1, 1, DAY, 10, 0)])
    out = run(rows, start=DAY, end=DAY + timedelta(days=2), prior=stale)
    assert out["improvement"].to_list()[1] == pytest.approx(0.0)


def test_lookback_is_configurable():
    prior = history([(1, 1, DAY - timedelta(days=3), 1, 0)])
    rows = [{"id": 2, "user_id": 1, "is_correct": True, "attempted_at": at(DAY, 9)}]
    assert run(rows, prior=prior, lookback_days=2)["improvement"].item() is None
    assert run(rows, prior=prior, lookback_days=3)["improvement"].item() == pytest.approx(1.0)


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
