"""``topic_ability``'s checks (ERROR): finite estimates, and one row per key counted in SQL."""

from datetime import date

import dagster as dg
import polars as pl

from seedtest_assets.core.topic_ability.table import duplicate_keys
from seedtest_assets.defs.resources import WarehouseResource

TOPIC_CHECKS = {
    "finite_estimates": "Every topic theta finite, every SE finite and > 0.",
    "one_row_per_key": "The week has one row per (student, topic), counted in the warehouse "
    "(the primary key (week_start, user_id, topic_id) makes a second one impossible).",
}


def finite_check(rows: pl.DataFrame) -> dg.AssetCheckResult:
    """``finite_estimates`` of the rows just written."""
    finite = rows.filter(
        pl.col("theta").is_finite() & pl.col("se").is_finite() & (pl.col("se") > 0)
    ).height
    return dg.AssetCheckResult(
        check_name="finite_estimates",
        passed=finite == rows.height,
        metadata={"rows": rows.height, "not_finite": rows.height - finite},
    )


def unique_check(warehouse: WarehouseResource, week_start: date) -> dg.AssetCheckResult:
    """``one_row_per_key``: duplicated (week, student, topic) rows, counted in SQL."""
    with warehouse.engine.connect() as conn:
        duplicated = duplicate_keys(conn, week_start)
    return dg.AssetCheckResult(
        check_name="one_row_per_key",
        passed=not duplicated,
        metadata={"keys_with_several_rows": len(duplicated), "sample": duplicated[:10]},
    )
