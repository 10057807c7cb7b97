"""``topic_ability`` (weekly batch): per-topic θ stored for the week, Dagster shell.

The work is in :mod:`seedtest_assets.core.topic_ability.pipeline`; the weekly reports read the
rows instead of running IRT per topic inside their batch.
"""

from datetime import date

import dagster as dg

from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.topic_ability.pipeline import materialize_week
from seedtest_assets.core.workloads import IRT_POD, op_tags
from seedtest_assets.defs.attempts.assets import attempts
from seedtest_assets.defs.mirt_ability.assets import AbilityConfig
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.partitions import WEEKLY_BACKFILL, asset_with_backfill_policy, weekly
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.topic_ability.checks import TOPIC_CHECKS, finite_check, unique_check


@asset_with_backfill_policy(
    op_tags=op_tags(IRT_POD),
    partitions_def=weekly,
    backfill_policy=WEEKLY_BACKFILL,
    deps=[attempts, mirt_item_params],
    group_name="irt",
    kinds={"numpy", "sql"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="topic_ability", description=desc)
        for name, desc in TOPIC_CHECKS.items()
    ],
    description="EAP ability (theta) and SE per student and topic over the trailing window, "
    "each (student, topic) scored as its own pseudo-student with the week's item parameters "
    "(flagged items left out). The weekly reports' topic section reads these rows.",
    metadata={"table": "topic_ability"},
)
def topic_ability(
    context: dg.AssetExecutionContext, config: AbilityConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    week_start = date.fromisoformat(context.partition_key)
    run = materialize_week(
        warehouse.engine,
        week_start,
        now=utc_now(),
        model=config.model,
        lookback_weeks=config.lookback_weeks,
    )
    checks = [finite_check(run.rows), unique_check(warehouse, week_start)]
    if run.note:  # nothing to score: an empty partition, not a failure
        context.log.info(run.note)
        return dg.MaterializeResult(
            metadata={"note": run.note, "rows": 0, "students": 0, "topics": 0},
            check_results=checks,
        )
    context.log.info(
        "topic θ of %s: %d rows (%d students x %d topics) with %s in %.2f s",
        week_start,
        run.rows.height,
        run.students,
        run.topics,
        run.version,
        run.seconds.get("total", 0.0),
    )
    return dg.MaterializeResult(
        metadata={
            "rows": run.rows.height,
            "students": run.students,
            "topics": run.topics,
            "version": run.version,
            "model": run.model,
            "items_week": run.items_week.isoformat() if run.items_week else "",
            "responses": run.responses,
            "se_median": float(run.rows["se"].median()),
            "seconds_total": round(run.seconds.get("total", 0.0), 3),
            "seconds_score": round(run.seconds.get("score", 0.0), 3),
        },
        check_results=checks,
    )
