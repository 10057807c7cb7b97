"""The weekly abilities' checks (beyond the inline ``finite_estimates``): one row per student."""

from datetime import date

import dagster as dg

from seedtest_assets.core.mirt_ability.pipeline import (
    duplicate_weekly_rows,
)
from seedtest_assets.defs.resources import WarehouseResource


def unique_check(warehouse: WarehouseResource, week_start: date) -> dg.AssetCheckResult:
    """``one_row_per_student``: duplicated (week, student) weekly rows, counted in SQL."""
    duplicated = duplicate_weekly_rows(warehouse.engine, week_start)
    return dg.AssetCheckResult(
        check_name="one_row_per_student",
        passed=not duplicated,
        metadata={"students_with_several_rows": len(duplicated), "sample": duplicated[:10]},
    )
