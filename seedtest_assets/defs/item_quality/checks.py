"""The item-quality checks: misfit beyond chance, drifted anchors, DIF across organisations
(all WARN: the items stay in the bank until a content author has looked)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from seedtest_assets.core.item_quality.assess import Assessment, worst

#: The check names, in the order the asset declares them.
CHECKS = ("misfit_within_chance", "anchors_stable", "no_dif_across_organisations")


def worst_table(items: pl.DataFrame, problem: str, limit: int = 10) -> dg.MetadataValue:
    """The ``limit`` worst items with ``problem`` as a Markdown table for the UI."""
    rows = worst(items, problem, limit)
    if rows.height == 0:
        return dg.MetadataValue.md(f"No item with {problem} this week.")
    head = "| item | a | b | responses | fit p | drift z(b) | DIF p | DIF b shift |\n"
    head += "|---|---|---|---|---|---|---|---|\n"

    def num(v: float | None, fmt: str) -> str:
        if v is None:
            return ""
        text = format(v, fmt)
        # A rounded -0.04 prints "-0.0", which reads like a direction: no sign on a zero.
        return text[1:] if text.startswith("-") and float(text) == 0 else text

    lines = [
        f"| {r['item_id']} | {num(r['a'], '.2f')} | {num(r['b'], '.2f')} | {r['n_responses']} "
        f"| {num(r['fit_p'], '.2g')} | {num(r['drift_z_b'], '.1f')} | {num(r['dif_p'], '.2g')} "
        f"| {num(r['dif_max_b_shift'], '.2f')} |"
        for r in rows.iter_rows(named=True)
    ]
    return dg.MetadataValue.md(head + "\n".join(lines))


def quality_checks(assessment: Assessment) -> list[dg.AssetCheckResult]:
    """The three WARN checks of one week's assessment."""
    a, items = assessment, assessment.items
    warn = dg.AssetCheckSeverity.WARN
    return [
        dg.AssetCheckResult(
            check_name="misfit_within_chance",
            passed=a.misfit <= a.misfit_expected_max,
            severity=warn,
            description="Misfitting items (fit p < 0.01) within what chance gives (the 99th "
            "percentile of the false-positive count)",
            metadata={
                "tested": a.fit_tested,
                "misfit": a.misfit,
                "expected_at_most": a.misfit_expected_max,
                "worst": worst_table(items, "misfit"),
            },
        ),
        dg.AssetCheckResult(
            check_name="anchors_stable",
            passed=a.drifted == 0,
            severity=warn,
            description="No common item drifted since last week (Holm, 5%); drifted ones were "
            "left out of the scale link",
            metadata={
                "tested": a.drift_tested,
                "drifted": a.drifted,
                "worst": worst_table(items, "drift"),
            },
        ),
        dg.AssetCheckResult(
            check_name="no_dif_across_organisations",
            passed=a.dif_items == 0,
            severity=warn,
            description="No item functions differently across organisations (Holm 5% and a "
            "b shift of at least 0.4 logit)",
            metadata={
                "tested": a.dif_tested,
                "dif_items": a.dif_items,
                "organisations": a.dif_groups.height,
                "note": a.dif_note or "",
                "worst": worst_table(items, "dif"),
            },
        ),
    ]
