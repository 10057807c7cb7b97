"""The whole-table check of the `attempts` source, on both backends."""

from datetime import timedelta

import dagster as dg

from seedtest_assets.defs.attempts.checks import attempts_undatable_or_duplicate
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets_tests.clock import NOON
from seedtest_assets_tests.factories import DAY, at, attempts_frame, insert_attempts, seed_reference


def run_check(url: str) -> tuple[dg.AssetCheckResult, dict]:
    check = attempts_undatable_or_duplicate(warehouse=WarehouseResource(database_url=url))
    return check, {k: getattr(v, "value", v) for k, v in check.metadata.items()}


def test_counts_rows_no_day_can_own_and_duplicated_ids(warehouse_url, clock):
    seed_reference(warehouse_url)
    insert_attempts(
        warehouse_url,
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "attempted_at": at(DAY, 9)},
                {"id": 2, "user_id": 1, "attempted_at": None},
                {"id": 3, "user_id": 1, "attempted_at": NOON + timedelta(hours=1)},  # future
                {"id": 4, "user_id": 1, "attempted_at": at(DAY, 9)},
                {"id": 4, "user_id": 1, "attempted_at": at(DAY + timedelta(days=1), 9)},
            ]
        ),
    )
    check, meta = run_check(warehouse_url)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert {k: v for k, v in meta.items() if not k.startswith("sample")} == {
        "source_relation": "attempts <- attempts",  # our own table: no SOURCE_ATTEMPTS set
        "null_attempted_at": 1,
        "future_attempted_at": 1,
        "duplicated_ids": 1,
        "undatable_attempted_at": 0,
        "numeric_attempted_at": 0,
        "non_integer_ids": 0,
    }
    assert sorted(meta["sample_undatable_ids"]) == [2, 3]
    assert meta["sample_duplicated_ids"] == [4]


def test_a_clean_table_passes(warehouse_url, clock):
    seed_reference(warehouse_url)
    insert_attempts(
        warehouse_url, attempts_frame([{"id": 1, "user_id": 1, "attempted_at": at(DAY, 0)}])
    )
    check, _ = run_check(warehouse_url)
    assert check.passed
