"""Whole-table checks of the raw ``attempts`` feed (rows no daily partition can own)."""

from datetime import timedelta

import dagster as dg

from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.source.attempts import source_anomalies
from seedtest_assets.core.source.relations import source_tables
from seedtest_assets.core.workloads import BATCH_POD, op_tags
from seedtest_assets.defs.attempts.assets import attempts
from seedtest_assets.defs.resources import WarehouseResource


@dg.asset_check(
    asset=attempts.key,
    op_tags=op_tags(BATCH_POD),
    description=(
        "Rows no daily partition can own or reconcile: NULL, undated (SQLite: neither a "
        "timestamp nor a number) or future `attempted_at`, ids that are not integers (SQLite), "
        "and ids used by more than one row anywhere in the table; also counts numeric "
        "`attempted_at` (SQLite: quarantined under their day). Warns with counts and samples. "
        "`source_relation`: the relation read (SOURCE_ATTEMPTS) and its column renames."
    ),
)
def attempts_undatable_or_duplicate(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    future = utc_now() + timedelta(minutes=5)
    with warehouse.engine.connect() as conn:
        found = source_anomalies(conn, future)
    counted = (
        "null_attempted_at",
        "future_attempted_at",
        "duplicated_ids",
        "undatable_attempted_at",
        "numeric_attempted_at",
        "non_integer_ids",
    )
    relation = source_tables().relations["attempts"]
    return dg.AssetCheckResult(
        passed=sum(found[k] for k in counted) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"source_relation": relation.describe(), **found},
    )
