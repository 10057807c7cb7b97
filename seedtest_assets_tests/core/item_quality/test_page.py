"""The item-bank page, read as a content author reads it: each section lists its planted
item with a chart; the DIF item has one curve per organisation; ids are text, never markup."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import polars as pl
import pytest

from seedtest_assets.core.item_quality.page import Curve, icc_svg, page_data, render_page


def _section(html: str, start: str, end: str) -> str:
    return html.split(f'id="{start}"')[1].split(f'id="{end}"')[0]


def test_each_section_shows_its_planted_item_with_curves(week):
    result, misfit_id, dif_id, drift_id = week
    previous = result.items.select("item_id", "a", "b", "c")
    data = page_data(result, previous, week_start=date(2026, 3, 9), version="2PL@2026-03-09")
    html = render_page(data).decode("utf-8")
    assert "Week of 2026-03-09" in html and "calibration 2PL@2026-03-09" in html
    misfit = _section(html, "misfit", "drift")
    drift = _section(html, "drift", "dif")
    dif = html.split('id="dif"')[1]
    assert f"<strong>{misfit_id}</strong>" in misfit and "S-X2" in misfit
    # The planted misfit's plot: a dot per fit group, some outside the chance band (red).
    plot = misfit.split(f"<strong>{misfit_id}</strong>")[1].split("</svg>")[0]
    assert plot.count("<circle") >= 5 and 'fill="#e76f51"' in plot
    assert f"<strong>{drift_id}</strong>" in drift and "last week" in drift
    assert f"<strong>{dif_id}</strong>" in dif
    # The DIF item's chart: one curve per organisation tested (3).
    chart = dif.split(f"<strong>{dif_id}</strong>")[1].split("</svg>")[0]
    assert chart.count("<polyline") == 3 and "organisation org1" in chart


def test_ids_are_escaped_not_markup():
    svg = icc_svg([Curve("<script>x</script>", 1.0, 0.0)], "Item <b>1</b>")
    assert "<script>" not in svg and "&lt;b&gt;1&lt;/b&gt;" in svg


def test_an_empty_week_says_why(week):
    result, *_ = week
    clean = result.items.with_columns(
        misfit=pl.lit(False), drifted=pl.lit(None, pl.Boolean), dif=pl.lit(False)
    )
    quiet = replace(result, items=clean, drift_tested=0)
    html = render_page(
        page_data(quiet, clean.head(0), week_start=date(2026, 3, 9), version="v")
    ).decode("utf-8")
    assert "No item misfits this week." in html
    assert "No drift test this week" in html
    assert html.count("<svg") == 0


@pytest.mark.parametrize("b", [-2.0, 2.0])
def test_the_legend_sits_where_no_curve_runs(b):
    """An easy item's curves cross the top left, a hard one's the bottom right: the legend
    takes the other corner, so no curve runs under its labels."""
    import re

    curves = [Curve(f"organisation org-00{k}", 1.5, b + 0.4 * k) for k in range(3)]
    svg = icc_svg(curves, "Item 1")
    box = re.search(
        r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="(\d+)" fill="#ffffff"', svg
    )
    assert box, svg[:500]
    bx, by, bw, bh = map(float, box.groups())
    assert (bx < 200) == (b > 0)  # hard item: top left; easy item: bottom right
    for line in re.findall(r'<polyline points="([^"]+)"', svg):
        pts = [tuple(map(float, p.split(","))) for p in line.split()]
        assert not any(bx <= px <= bx + bw and by <= py <= by + bh for px, py in pts)
    assert svg.count("organisation org-00") == 3
