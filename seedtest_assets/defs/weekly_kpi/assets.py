"""``weekly_kpi``: I_t, E_t, P and S per student and week (Dagster shell over the pipeline)."""

from datetime import date

import dagster as dg
from pydantic import Field

from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.weekly_kpi.compute import KpiSettings
from seedtest_assets.core.weekly_kpi.pipeline import (
    materialize_weekly_kpi,
)
from seedtest_assets.core.workloads import BATCH_POD, op_tags
from seedtest_assets.defs.features_topic_daily.assets import features_topic_daily
from seedtest_assets.defs.mirt_ability.assets import mirt_ability
from seedtest_assets.defs.partitions import (
    WEEKLY_BACKFILL,
    asset_with_backfill_policy,
    weekly,
    window_back,
)
from seedtest_assets.defs.resources import WarehouseResource
from seedtest_assets.defs.weekly_kpi.checks import CHECKS, _mean, _median, _round, kpi_check_results

#: Weeks of daily features before the week that the default settings read (7: 56 days of
#: history = the churn model's oldest training date plus its 4-week window). Declared as the
#: dependency; larger ``training_weeks``/``recent_weeks`` read further back than declared.
HISTORY_WEEKS = -(-KpiSettings().history_days() // 7) - 1


class KpiConfig(dg.Config):
    """KPI windows and thresholds (launchpad-editable; see docs/kpis.md; out-of-range values
    are refused)."""

    recent_weeks: int = Field(default=4, ge=1, le=12, description="Weeks of activity for E_t/S.")
    horizon_days: int = Field(default=14, ge=1, le=56, description="S: days without a visit.")
    training_weeks: int = Field(
        default=3, ge=1, le=12, description="Past as-of dates the churn model learns from."
    )
    min_study_hours: float = Field(
        default=0.05, ge=0.0, le=40.0, description="E_t is null below this (hours per week)."
    )


@asset_with_backfill_policy(
    op_tags=op_tags(BATCH_POD),
    partitions_def=weekly,
    backfill_policy=WEEKLY_BACKFILL,
    deps=[
        # The week's days and the 7 weeks before (activity history for S): a time-window
        # mapping, so lineage and backfills know which days a week reads.
        dg.AssetDep(
            features_topic_daily,
            partition_mapping=window_back(-HISTORY_WEEKS, 0),
        ),
        # The week's abilities (identity mapping: a backfill of weeks W1..Wk re-computes
        # exactly the KPIs of W1..Wk). The week in progress has no abilities yet and reads the
        # last calibrated week's (docs/kpis.md); that fallback is not an edge in the graph.
        mirt_ability,
    ],
    group_name="kpi",
    kinds={"polars", "sql"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="weekly_kpi", description=desc)
        for name, desc in CHECKS.items()
    ],
    description="Per student and week: I_t improvement (logits/week), E_t efficiency (logits "
    "per study hour), P probability of reaching the goal, S churn risk (no visit in the next "
    "2 weeks), with the numbers behind them (theta, se, study minutes, active days...). "
    "Defined in docs/kpis.md.",
    metadata={"table": "weekly_kpi", "docs": "docs/kpis.md"},
)
def weekly_kpi(
    context: dg.AssetExecutionContext, config: KpiConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    settings = KpiSettings(
        recent_weeks=config.recent_weeks,
        horizon_days=config.horizon_days,
        training_weeks=config.training_weeks,
        min_study_hours=config.min_study_hours,
    )
    week_start = date.fromisoformat(context.partition_key)
    run = materialize_weekly_kpi(warehouse.engine, week_start, now=utc_now(), settings=settings)
    k, model = run.kpis, run.churn_model
    context.log.info(
        "weekly_kpi %s (as of %s): %d students, abilities of week %s, churn model %s",
        week_start,
        run.as_of,
        k.height,
        run.ability_week,
        model.source,
    )
    return dg.MaterializeResult(
        metadata={
            "as_of": run.as_of.isoformat(),
            "students": k.height,
            "active_this_week": int(k["active_this_week"].sum()),
            "ability_week": str(run.ability_week),
            "with_goal": int(k["P"].is_not_null().sum()),
            "mean_P": _mean(k, "P"),
            "mean_S": _mean(k, "S"),
            "median_I_t": _median(k, "I_t"),
            "churn_model": model.source,
            "churn_model_examples": model.n_train,
            "churn_model_base_rate": _round(model.base_rate),
            "churn_model_log_loss": _round(model.log_loss),
            "seconds": {key: round(v, 3) for key, v in run.seconds.items()},
        },
        check_results=kpi_check_results(warehouse, run),
    )
