"""``item_quality``: the week's items judged (Dagster shell over the pipeline)."""

from dataclasses import replace
from datetime import date

import dagster as dg
from pydantic import Field

from seedtest_assets.core.item_quality.assess import QualitySettings
from seedtest_assets.core.item_quality.page import store_page
from seedtest_assets.core.item_quality.pipeline import QualityRun, assess_week
from seedtest_assets.core.mirt_item_params.pipeline import DEFAULT_WINDOW_WEEKS
from seedtest_assets.core.mirt_item_params.share import DEFAULT_FLOOR, DEFAULT_MAX_SHARE
from seedtest_assets.core.options import IrtModel
from seedtest_assets.core.report_artifacts.store import open_store
from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.workloads import IRT_POD, op_tags
from seedtest_assets.defs.item_quality.checks import CHECKS, quality_checks, worst_table
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.partitions import WEEKLY_BACKFILL, asset_with_backfill_policy, weekly
from seedtest_assets.defs.resources import ReportStoreResource, WarehouseResource

#: The calibration settings that decide its window, read from its materialization.
WINDOW_SETTINGS = ("window_weeks", "max_student_share", "min_student_responses")


_DEFAULTS = QualitySettings()


class ItemQualityConfig(dg.Config):
    """Which calibration to judge and how much data the tests read (launchpad-editable)."""

    model: IrtModel = Field(default="2PL", description="IRT model of the calibration.")
    fit_max_students: int = Field(
        default=_DEFAULTS.fit_max_students,
        ge=100,
        description="Item fit on at most this many students of the window (seeded sample).",
    )
    fit_max_responses: int = Field(
        default=_DEFAULTS.fit_max_responses,
        ge=1_000,
        description="... and at most this many of their responses (the fit's cost is per "
        "response).",
    )
    dif_min_group_students: int = Field(
        default=_DEFAULTS.dif_min_group_students,
        ge=20,
        description="Organisations with fewer students in the window are left out of DIF.",
    )
    dif_max_group_students: int = Field(
        default=_DEFAULTS.dif_max_group_students,
        ge=20,
        description="DIF reads at most this many students per organisation (seeded sample).",
    )
    dif_max_group_responses: int = Field(
        default=_DEFAULTS.dif_max_group_responses,
        ge=1_000,
        description="... and at most this many of their responses per organisation.",
    )

    def settings(self) -> QualitySettings:
        """The thresholds and sizes for :func:`assess_items`."""
        return replace(
            _DEFAULTS,
            fit_max_students=self.fit_max_students,
            fit_max_responses=self.fit_max_responses,
            dif_min_group_students=self.dif_min_group_students,
            dif_max_group_students=self.dif_max_group_students,
            dif_max_group_responses=self.dif_max_group_responses,
        )


def calibration_window(instance: dg.DagsterInstance, partition_key: str) -> dict[str, float | int]:
    """The window settings the partition's calibration ran with (its materialization's
    metadata), so fit and DIF read the responses it was fitted on; the defaults when it
    recorded none (calibrated before they were recorded, or outside Dagster)."""
    found: dict[str, float | int] = {
        "window_weeks": DEFAULT_WINDOW_WEEKS,
        "max_student_share": DEFAULT_MAX_SHARE,
        "min_student_responses": DEFAULT_FLOOR,
    }
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=mirt_item_params.key, asset_partitions=[partition_key]),
        limit=1,
    ).records
    if records and records[0].asset_materialization is not None:
        meta = records[0].asset_materialization.metadata
        for name in WINDOW_SETTINGS:
            if name in meta:
                found[name] = meta[name].value  # type: ignore[assignment]
    return found


@asset_with_backfill_policy(
    op_tags=op_tags(IRT_POD),
    partitions_def=weekly,
    backfill_policy=WEEKLY_BACKFILL,
    deps=[mirt_item_params],
    group_name="irt",
    kinds={"numpy", "scipy", "sql"},
    check_specs=[
        dg.AssetCheckSpec(
            "misfit_within_chance",
            asset="item_quality",
            description="WARN when more items misfit (fit p < 0.01) than chance gives (the "
            "99th percentile of the false-positive count); metadata: the worst items.",
        ),
        dg.AssetCheckSpec(
            "anchors_stable",
            asset="item_quality",
            description="WARN when common items drifted since last week (Wald z on the linked "
            "scale, Holm 5%); the calibration's link left them out.",
        ),
        dg.AssetCheckSpec(
            "no_dif_across_organisations",
            asset="item_quality",
            description="WARN when items function differently across organisations (LR test, "
            "Holm 5%, b shift >= 0.4 logit).",
        ),
    ],
    description="Per item of the week's calibration: standard errors, item fit, information "
    "at the population's mean, drift against last week and DIF across organisations; and "
    "the week's item-bank page for content authors (the worst items with their curves).",
    metadata={"table": "item_quality"},
)
def item_quality(
    context: dg.AssetExecutionContext,
    config: ItemQualityConfig,
    warehouse: WarehouseResource,
    report_store: ReportStoreResource,
) -> dg.MaterializeResult:
    week_start = date.fromisoformat(context.partition_key)
    window = calibration_window(context.instance, context.partition_key)
    run = assess_week(
        warehouse.engine,
        week_start,
        now=utc_now(),
        model=config.model,
        window_weeks=int(window["window_weeks"]),
        max_student_share=float(window["max_student_share"]),
        min_student_responses=int(window["min_student_responses"]),
        settings=config.settings(),
    )
    if run is None:
        note = f"no {config.model} calibration stored for {week_start}: nothing to judge"
        context.log.info(note)
        return dg.MaterializeResult(
            metadata={"note": note, "items": 0},
            check_results=[
                dg.AssetCheckResult(check_name=name, passed=True, metadata={"note": note})
                for name in CHECKS
            ],
        )
    a = run.assessment
    page = _store_page(context, run, report_store)
    context.log.info(
        "judged %s: %d items; misfit %d of %d (chance: <= %d), drifted %d of %d, DIF %d of "
        "%d (%s); read %.1f s, assess %.1f s",
        run.version,
        run.rows,
        a.misfit,
        a.fit_tested,
        a.misfit_expected_max,
        a.drifted,
        a.drift_tested,
        a.dif_items,
        a.dif_tested,
        a.dif_note or f"{a.dif_groups.height} organisations",
        run.read_seconds,
        run.assess_seconds,
    )
    return dg.MaterializeResult(
        metadata={
            "version": run.version,
            "items": run.rows,
            "theta_mean": round(a.theta_mean, 3),
            "misfit": a.misfit,
            "drifted": a.drifted,
            "dif_items": a.dif_items,
            "dif_organisations": a.dif_groups.height,
            "dif_note": a.dif_note or "tested",
            "window_weeks": int(window["window_weeks"]),
            "read_seconds": round(run.read_seconds, 2),
            "assess_seconds": round(run.assess_seconds, 2),
            **page,
            "worst_misfit": worst_table(a.items, "misfit"),
            "worst_drift": worst_table(a.items, "drift"),
            "worst_dif": worst_table(a.items, "dif"),
        },
        check_results=quality_checks(a),
    )


def _store_page(
    context: dg.AssetExecutionContext, run: QualityRun, report_store: ReportStoreResource
) -> dict[str, dg.MetadataValue]:
    """Render and store the item-bank page; its URL for the metadata. A failed upload is
    logged and reported in the metadata, not raised: the table rows are already written
    and stand on their own, and no row claims the page exists."""
    settings = report_store.store_settings()
    try:
        stored = store_page(
            open_store(settings), settings.prefix, run.week_start, run.model, run.page()
        )
    except Exception as err:  # the store's errors are many (S3, disk): report any
        context.log.warning("item-bank page not stored: %s", type(err).__name__)
        return {"item_bank_page": dg.MetadataValue.text(f"not stored: {type(err).__name__}")}
    return {
        "item_bank_page": dg.MetadataValue.url(stored.url),
        "item_bank_page_bytes": dg.MetadataValue.int(stored.size),
    }
