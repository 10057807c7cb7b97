"""Daily per-student, per-topic learning features (no Dagster here)."""

from seedtest_assets.core.features_topic_daily.compute import (
    FEATURES_SCHEMA,
    HISTORY_SCHEMA,
    IMPROVEMENT_LOOKBACK_DAYS,
    compute_features,
)

__all__ = ["FEATURES_SCHEMA", "HISTORY_SCHEMA", "IMPROVEMENT_LOOKBACK_DAYS", "compute_features"]
