from datetime import date, datetime, timedelta

import polars as pl
import pytest

from seedtest_assets.core.user_inactivity import (
    INACTIVITY_SCHEMA,
    InactivityThresholds,
    classify_inactivity,
)

START = date(2026, 3, 2)
COMPUTED = datetime(2026, 3, 10)


def frame(rows, schema):
    return pl.DataFrame(rows, schema=schema, orient="row")


USERS = {"user_id": pl.Int64, "created_at": pl.Datetime("us")}
BEFORE = {"user_id": pl.Int64, "last_attempt_at": pl.Datetime("us")}
ACTIVITY = {"user_id": pl.Int64, "date": pl.Date, "last_attempt_at": pl.Datetime("us")}


def classify(users, before, activity, start=START, days=1, thresholds=None):
    return classify_inactivity(
        frame(users, USERS),
        frame(before, BEFORE),
        frame(activity, ACTIVITY),
        start=start,
        end=start + timedelta(days=days),
        computed_at=COMPUTED,
        thresholds=thresholds,
    )


@pytest.mark.parametrize(
    "days_ago, status",
    [
        (0, "active"),
        (6, "active"),
        (7, "at_risk"),
        (13, "at_risk"),
        (14, "inactive"),
        (40, "inactive"),
    ],
)
def test_threshold_boundaries(days_ago, status):
    last = datetime(2026, 3, 2, 23, 0) - timedelta(days=days_ago)
    users = [(1, datetime(2025, 1, 1))]
    if days_ago == 0:
        out = classify(users, [], [(1, START, last)])
    else:
        out = classify(users, [(1, last)], [])
    row = out.row(0, named=True)
    assert (row["days_inactive"], row["status"]) == (days_ago, status)


def test_activity_inside_the_range_updates_following_days():
    users = [(1, datetime(2025, 1, 1)), (2, datetime(2026, 3, 3, 8))]
    out = classify(
        users,
        [(1, datetime(2026, 2, 20, 10))],
        [(1, date(2026, 3, 3), datetime(2026, 3, 3, 18))],
        days=3,
    )
    assert out.schema == pl.Schema(INACTIVITY_SCHEMA)
    u1 = out.filter(pl.col("user_id") == "1")
    assert u1["days_inactive"].to_list() == [10, 0, 1]
    assert u1["status"].to_list() == ["at_risk", "active", "active"]
    u2 = out.filter(pl.col("user_id") == "2")
    # registered on the 3rd: no row for the 2nd, never_active afterwards
    assert u2["as_of_date"].to_list() == [date(2026, 3, 3), date(2026, 3, 4)]
    assert u2["status"].to_list() == ["never_active", "never_active"]
    assert u2["days_inactive"].to_list() == [None, None]


def test_custom_thresholds():
    t = InactivityThresholds(at_risk_after_days=2, inactive_after_days=3)
    out = classify([(1, datetime(2025, 1, 1))], [(1, datetime(2026, 2, 28, 9))], [], thresholds=t)
    assert out["status"].item() == "at_risk"  # 2 days


@pytest.mark.parametrize("a, b", [(0, 5), (7, 7), (10, 3)])
def test_invalid_thresholds_are_refused(a, b):
    with pytest.raises(ValueError, match="at_risk_after_days"):
        InactivityThresholds(a, b)
