"""The KPI checks: coverage, ranges and finite values of a week's ``weekly_kpi`` rows."""

import math

import dagster as dg
import polars as pl

from seedtest_assets.core.weekly_kpi.compute import KPI_SCHEMA
from seedtest_assets.core.weekly_kpi.pipeline import (
    KpiRun,
    missing_active_students,
)
from seedtest_assets.defs.resources import WarehouseResource

#: Allowed ranges of the KPI fields (inclusive); null is allowed where docs/kpis.md says so.
RANGES = {
    "P": (0.0, 1.0),
    "S": (0.0, 1.0),
    "accuracy": (0.0, 1.0),
    "active_days": (0, 7),
    "active_days_4w": (1, 28),
    "days_since_last": (0, 27),
    "study_minutes": (0.0, 7 * 24 * 60),
    "se": (1e-9, 10.0),
    "I_t_se": (1e-9, 10.0),
}


CHECKS = {
    "active_students_covered": "Every student with features in the week (so far) has a "
    "weekly_kpi row: counted in the warehouse.",
    "values_in_range": "P and S in [0, 1], accuracy in [0, 1], active days 0-7, SEs > 0, "
    "study minutes within the week.",
    "finite_values": "No NaN or infinite number in any KPI field (null only where documented).",
}


def kpi_check_results(warehouse: WarehouseResource, run: KpiRun) -> list[dg.AssetCheckResult]:
    """The three checks: coverage counted in the warehouse, ranges and finiteness on the rows
    that were written."""
    missing, sample = missing_active_students(warehouse.engine, run.week_start, run.as_of)
    k = run.kpis
    out_of_range = {
        col: int(
            k.filter(
                pl.col(col).is_not_null()
                & ~pl.col(col).is_between(lo, hi)
                & pl.col(col).is_finite()
                if KPI_SCHEMA[col].is_float()
                else pl.col(col).is_not_null() & ~pl.col(col).is_between(lo, hi)
            ).height
        )
        for col, (lo, hi) in RANGES.items()
    }
    floats = [c for c, t in KPI_SCHEMA.items() if t.is_float()]
    not_finite = {
        col: n
        for col in floats
        if (n := int(k.filter(pl.col(col).is_not_null() & ~pl.col(col).is_finite()).height))
    }
    return [
        dg.AssetCheckResult(
            check_name="active_students_covered",
            passed=missing == 0,
            metadata={"missing": missing, "sample_user_ids": [str(u) for u in sample]},
        ),
        dg.AssetCheckResult(
            check_name="values_in_range",
            passed=not any(out_of_range.values()),
            metadata={"out_of_range": out_of_range, "rows": k.height},
        ),
        dg.AssetCheckResult(
            check_name="finite_values",
            passed=not not_finite,
            metadata={"not_finite": not_finite, "rows": k.height},
        ),
    ]


def _round(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _mean(frame: pl.DataFrame, col: str) -> float | None:
    return _round(frame[col].mean()) if frame[col].drop_nulls().len() else None


def _median(frame: pl.DataFrame, col: str) -> float | None:
    return _round(frame[col].median()) if frame[col].drop_nulls().len() else None
