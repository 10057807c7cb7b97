"""Daily inactivity status per student (no Dagster here)."""

from seedtest_assets.core.user_inactivity.compute import (
    INACTIVITY_SCHEMA,
    STATUSES,
    InactivityThresholds,
    classify_inactivity,
)

__all__ = ["INACTIVITY_SCHEMA", "STATUSES", "InactivityThresholds", "classify_inactivity"]
