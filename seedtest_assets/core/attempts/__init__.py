"""The ``attempts`` source: reading raw attempts and quarantining the bad ones (no Dagster)."""

from seedtest_assets.core.attempts.validate import (
    REJECT_REASONS,
    ValidationLimits,
    ValidationResult,
    validate_attempts,
)

__all__ = ["REJECT_REASONS", "ValidationLimits", "ValidationResult", "validate_attempts"]
