"""The op behind ``student_rescore_job``: re-score a batch of students in one run (ADR 0001)."""

import dagster as dg
from pydantic import Field

from seedtest_assets.core.mirt_ability.online import DEFAULT_LOOKBACK_DAYS, update_theta
from seedtest_assets.core.options import IrtModel, RescoreSource
from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.workloads import ONLINE_POD, op_tags
from seedtest_assets.defs.mirt_ability.assets import STUDENT_ABILITY
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.student_events import record_student_materializations, student_metadata


class RescoreConfig(dg.Config):
    """Which students, and how (launchpad-editable; out-of-range values are refused)."""

    user_ids: list[str] = Field(min_length=1, description="The students to re-score.")
    lookback_days: int = Field(
        default=DEFAULT_LOOKBACK_DAYS, ge=1, le=366, description="Days of attempts (1-366)."
    )
    model: IrtModel = Field(default="2PL", description="IRT model of the item parameters.")
    # Never "weekly": the weekly rows belong to the weekly batch (one per student-week).
    source: RescoreSource = Field(
        default="online", description="online (the sensor) or on_demand (a person)."
    )


@dg.op(
    description="Re-score the configured students with the latest calibrated item parameters; "
    "append mirt_ability rows; record student/mirt_ability per student in bulk.",
    tags={"kind": "numpy", **op_tags(ONLINE_POD)},
)
def rescore_students(
    context: dg.OpExecutionContext, config: RescoreConfig, warehouse: WarehouseResource
) -> dg.Output[None]:
    update = update_theta(
        warehouse.engine,
        config.user_ids,
        now=utc_now(),
        model=config.model,
        lookback_days=config.lookback_days,
        source=config.source,
    )
    meta = student_metadata(update.rows.iter_rows(named=True))
    for r in update.results:
        if r.status == "ok":
            meta[r.user_id]["updated_at"] = r.updated_at.isoformat() + "Z"
    # The helper expects an asset context but only needs the step context an op also has.
    recorded = record_student_materializations(context, STUDENT_ABILITY, meta)
    if update.noop:
        first = next(r for r in update.results if r.status != "ok")
        context.log.info(
            "%d of %d students: nothing to update (e.g. %s)",
            len(update.noop),
            len(update.results),
            first.message,
        )
    return dg.Output(
        None,
        metadata={
            "requested": len(update.results),
            "scored": len(update.scored),
            "noop": len(update.noop),
            "noop_sample": [str(u) for u in update.noop[:20]],
            "version": update.version or "none",
            "source": config.source,
            "per_student_events": recorded,
        },
    )
