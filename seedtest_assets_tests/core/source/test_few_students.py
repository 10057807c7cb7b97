"""The online update's read (a few students, PostgreSQL): one query of index probes
(``few_students_select``) gives exactly what the two-query path gives, hard cases included."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from seedtest_assets.core.attempts.validate import validate_attempts
from seedtest_assets.core.source.attempts import (
    attempts_window_select,
    other_copies_select,
    read_window_and_copies,
)
from seedtest_assets.core.warehouse import make_engine, read_frame
from seedtest_assets_tests.factories import DAY, attempts_frame, insert_attempts, seed_reference

T = datetime.combine(DAY, datetime.min.time()) + timedelta(hours=10)
START, END = DAY, DAY + timedelta(days=7)


@pytest.fixture
def url(postgres_url):
    from seedtest_assets_tests.conftest import _truncate_all

    _truncate_all(postgres_url)
    seed_reference(postgres_url, n_users=3)
    rows = [
        {"id": 1, "user_id": 1, "item_id": 100, "attempted_at": T},
        {"id": 2, "user_id": 1, "item_id": 999, "attempted_at": T},  # unknown item
        {"id": 3, "user_id": 9, "item_id": 100, "attempted_at": T},  # unknown user
        {"id": 4, "user_id": 1, "item_id": 101, "attempted_at": T},  # a copy under user 2
        {"id": 4, "user_id": 2, "item_id": 101, "attempted_at": T},
        {"id": 5, "user_id": 1, "item_id": 200, "topic_id": 2, "attempted_at": T},  # twice
        {"id": 5, "user_id": 1, "item_id": 200, "topic_id": 2, "attempted_at": T},
        {"id": 6, "user_id": 1, "item_id": 100, "attempted_at": T},  # a copy another week
        {"id": 6, "user_id": 1, "item_id": 100, "attempted_at": T + timedelta(days=30)},
        {"id": 7, "user_id": 2, "item_id": 200, "topic_id": 1, "attempted_at": T},  # topic
        {"id": 8, "user_id": 1, "item_id": 100, "attempted_at": T - timedelta(days=3)},  # before
        {"id": 9, "user_id": 3, "item_id": 100, "attempted_at": T},  # no copy anywhere
        {"id": 10, "user_id": 3, "item_id": 101, "attempted_at": T},
    ]
    insert_attempts(postgres_url, attempts_frame(rows))
    return postgres_url


def two_queries(engine, users):
    with engine.connect() as conn:
        raw = read_frame(conn, attempts_window_select(START, END, users))
        others = read_frame(conn, other_copies_select(START, END, users))
    return raw, others


@pytest.mark.parametrize("users", [["1"], ["1", "9"], ["1", "2", "3", "9"], ["3"], ["nobody"]])
def test_one_query_equals_the_two_query_path(url, users):
    engine = make_engine(url)
    try:
        raw, others = read_window_and_copies(engine, START, END, users)
        want_raw, want_others = two_queries(engine, users)
    finally:
        engine.dispose()
    assert raw.schema == want_raw.schema and others.schema == want_others.schema
    assert_frame_equal(raw.sort(pl.all()), want_raw.sort(pl.all()))
    assert_frame_equal(others.sort("id"), want_others.sort("id"))
    now = T + timedelta(days=40)
    got = validate_attempts(raw, now=now, window=(START, END), other_copies=others)
    want = validate_attempts(want_raw, now=now, window=(START, END), other_copies=want_others)
    assert_frame_equal(got.valid.sort("id"), want.valid.sort("id"))
    assert_frame_equal(
        got.rejects.sort("attempt_id", "reason"), want.rejects.sort("attempt_id", "reason")
    )
    if "1" in users:  # the hard cases are there, not vacuous
        assert {"duplicate_id_conflict", "unknown_item"} <= set(got.rejects["reason"])
        assert set(others["id"]) >= {6} and got.valid.height >= 1
    if users == ["3"]:  # no id with a copy: the shortcut (no grouping), the same answer
        assert others.height == 0 and got.valid.height == 2
