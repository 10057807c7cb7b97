"""Validated attempts of a time window: the raw rows (:mod:`seedtest_assets.core.source.attempts`,
which owns the table and documents which rows a day owns) through
:func:`~seedtest_assets.core.attempts.validate.validate_attempts` (no Dagster).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.attempts.validate import (
    ValidationLimits,
    ValidationResult,
    validate_attempts,
)
from seedtest_assets.core.source.attempts import read_window_and_copies


def read_checked_attempts(
    engine: Engine,
    start: date,
    end: date,
    *,
    now: datetime,
    limits: ValidationLimits | None = None,
    user_ids: Sequence[str] | None = None,
) -> ValidationResult:
    """Attempts the days ``[start, end)`` own (of ``user_ids`` if given), validated."""
    raw, others = read_window_and_copies(engine, start, end, user_ids)
    return validate_attempts(raw, now=now, limits=limits, window=(start, end), other_copies=others)


def read_valid_attempts(
    engine: Engine,
    start: date,
    end: date,
    *,
    now: datetime,
    limits: ValidationLimits | None = None,
    user_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Attempts in ``[start, end)`` (of ``user_ids`` if given) that pass validation.

    Calibration and scoring use this rather than trusting the raw feed; the rejects themselves
    are recorded by the daily features, not here.
    """
    return read_checked_attempts(
        engine, start, end, now=now, limits=limits, user_ids=user_ids
    ).valid
