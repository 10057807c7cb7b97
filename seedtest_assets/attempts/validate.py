"""Validation of raw attempts: split a frame into valid rows and quarantined rejects.

Nothing is dropped silently: every input row is either valid or represented in the rejects
frame (one record per attempt id and reason, with the offending row(s) as JSON in ``raw``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

#: Reason codes written to ``attempt_rejects.reason`` and what they mean.
REJECT_REASONS: dict[str, str] = {
    "null_field": "a required column is NULL",
    "unknown_user": "user_id is not in users",
    "unknown_item": "item_id is not in items",
    "topic_mismatch": "topic_id differs from the item's topic",
    "response_time_negative": "response_time_ms < 0",
    "response_time_absurd": "response_time_ms above the configured maximum",
    "hints_negative": "hints_used < 0",
    "future_timestamp": "attempted_at later than the time of validation",
    "duplicate_id": "identical copies of one attempt id; one copy kept",
    "duplicate_id_conflict": "different rows share one attempt id; all copies rejected",
}

#: Columns a usable attempt must have.
REQUIRED = (
    "user_id",
    "session_id",
    "item_id",
    "topic_id",
    "is_correct",
    "response_time_ms",
    "hints_used",
    "attempted_at",
)

#: The raw attempt columns, as read from the ``attempts`` table.
ATTEMPT_COLUMNS = ("id", *REQUIRED)

REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "attempt_id": pl.Int64(),
    "reason": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
    "rows": pl.Int64(),  # how many input rows this record stands for
}


@dataclass(frozen=True)
class ValidationLimits:
    """Thresholds for plausibility checks.

    Attributes:
        max_response_time_ms: longest plausible time on one item (default 1 hour); longer is
            a client that stayed open, not a response.
        future_tolerance: clock skew allowed before a timestamp counts as "in the future".
    """

    max_response_time_ms: int = 3_600_000
    future_tolerance: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows (``ATTEMPT_COLUMNS``) and reject records (``REJECTS_SCHEMA``)."""

    valid: pl.DataFrame
    rejects: pl.DataFrame
    #: input rows not accepted (a row with several reasons counts once)
    rejected_rows: int


def _row_json(df: pl.DataFrame) -> pl.Expr:
    return pl.struct([pl.col(c) for c in ATTEMPT_COLUMNS if c in df.columns]).struct.json_encode()


def validate_attempts(
    raw: pl.DataFrame,
    *,
    now: datetime,
    limits: ValidationLimits | None = None,
) -> ValidationResult:
    """Split raw attempts into valid rows and reject records.

    Args:
        raw: one row per attempt as read from the source, columns ``ATTEMPT_COLUMNS`` plus
            ``user_known`` (bool: the user exists) and ``item_topic_id`` (the item's topic,
            null when the item is unknown), both produced by outer joins at read time.
        now: the validation time (naive UTC); later timestamps are "in the future".
        limits: plausibility thresholds.

    Returns:
        ``ValidationResult``: ``valid`` has ``ATTEMPT_COLUMNS`` (no nulls), ``rejects`` has one
        record per (attempt id, reason); ``valid.height + rejected_rows == raw.height``.
    """
    limits = limits or ValidationLimits()
    df = raw

    # Duplicates first: copies that agree keep one row; copies that disagree are all suspect.
    # Only rows whose id repeats are JSON-encoded (usually none), keeping the common path cheap.
    dup_rows = df.filter(pl.col("id").is_duplicated())
    dup_records = pl.DataFrame(schema=REJECTS_SCHEMA)
    if dup_rows.height:
        dup = (
            dup_rows.with_columns(_raw=_row_json(dup_rows))
            .group_by("id")
            .agg(n=pl.len(), n_distinct=pl.col("_raw").n_unique(), raws=pl.col("_raw"))
        )
        dup_records = dup.select(
            attempt_id=pl.col("id"),
            reason=pl.when(pl.col("n_distinct") == 1)
            .then(pl.lit("duplicate_id"))
            .otherwise(pl.lit("duplicate_id_conflict")),
            detail=pl.format("{} copies", pl.col("n")),
            raw=pl.format("[{}]", pl.col("raws").list.join(",")),
            rows=pl.when(pl.col("n_distinct") == 1).then(pl.col("n") - 1).otherwise(pl.col("n")),
        ).cast(REJECTS_SCHEMA)
        conflict_ids = dup.filter(pl.col("n_distinct") > 1)["id"]
        df = df.filter(~pl.col("id").is_in(conflict_ids.implode())).unique(
            subset=["id"], keep="first", maintain_order=True
        )

    null_cols = [pl.when(pl.col(c).is_null()).then(pl.lit(c)) for c in REQUIRED]
    future = now + limits.future_tolerance
    rules: list[tuple[str, pl.Expr, pl.Expr]] = [
        (
            "null_field",
            pl.any_horizontal([pl.col(c).is_null() for c in REQUIRED]),
            pl.concat_str(null_cols, separator=",", ignore_nulls=True),
        ),
        (
            "unknown_user",
            pl.col("user_id").is_not_null() & ~pl.col("user_known").fill_null(False),
            pl.format("user_id={}", pl.col("user_id")),
        ),
        (
            "unknown_item",
            pl.col("item_id").is_not_null() & pl.col("item_topic_id").is_null(),
            pl.format("item_id={}", pl.col("item_id")),
        ),
        (
            "topic_mismatch",
            pl.col("item_topic_id").is_not_null()
            & pl.col("topic_id").is_not_null()
            & (pl.col("topic_id") != pl.col("item_topic_id")),
            pl.format("topic_id={} item topic={}", pl.col("topic_id"), pl.col("item_topic_id")),
        ),
        (
            "response_time_negative",
            pl.col("response_time_ms") < 0,
            pl.format("response_time_ms={}", pl.col("response_time_ms")),
        ),
        (
            "response_time_absurd",
            pl.col("response_time_ms") > limits.max_response_time_ms,
            pl.format("response_time_ms={}", pl.col("response_time_ms")),
        ),
        (
            "hints_negative",
            pl.col("hints_used") < 0,
            pl.format("hints_used={}", pl.col("hints_used")),
        ),
        (
            "future_timestamp",
            pl.col("attempted_at") > future,
            pl.format("attempted_at={}", pl.col("attempted_at")),
        ),
    ]
    flags = df.with_columns(
        [rule.fill_null(False).alias(f"_bad_{name}") for name, rule, _ in rules]
    )
    bad_any = pl.any_horizontal([pl.col(f"_bad_{name}") for name, _, _ in rules])
    # Details and JSON only for the (few) bad rows.
    bad = flags.filter(bad_any)
    bad = bad.with_columns(
        [detail.alias(f"_detail_{name}") for name, _, detail in rules],
        _raw=_row_json(bad),
    )
    row_records = [
        bad.filter(pl.col(f"_bad_{name}")).select(
            attempt_id=pl.col("id"),
            reason=pl.lit(name),
            detail=pl.col(f"_detail_{name}").cast(pl.String),
            raw=pl.col("_raw"),
            rows=pl.lit(1, dtype=pl.Int64),
        )
        for name, _, _ in rules
    ]
    rejects = pl.concat(
        [r.cast(REJECTS_SCHEMA) for r in [dup_records, *row_records]], how="vertical"
    )
    valid = flags.filter(~bad_any).select(ATTEMPT_COLUMNS)
    # Duplicate records count the copies they removed; each other bad row counts once.
    rejected_rows = int(dup_records["rows"].sum()) + bad.height
    return ValidationResult(valid=valid, rejects=rejects, rejected_rows=rejected_rows)
