"""The weekly item-bank page for content authors (no Dagster): the items ``item_quality``
found misfitting, drifting or functioning differently across organisations, each with its
curves, laid out by ``quarto/item_bank.qmd`` and rendered by the report machinery
(:mod:`seedtest_assets.core.report_artifacts.render`: pandoc once into a Jinja2 template,
filled here; values escaped, SVG charts inline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import polars as pl

from seedtest_assets.core.item_quality.assess import Assessment, worst
from seedtest_assets.core.report_artifacts.charts import nice_ticks
from seedtest_assets.core.report_artifacts.render import (
    FONT_FAMILY,
    ReportRenderer,
    convert_templates,
    quarto_dir,
)
from seedtest_assets.core.report_artifacts.store import ReportStore, StoredObject

#: Items per section at most (the worst first).
PAGE_ITEMS = 10
#: Line colours: this week / the reference organisation first.
COLOURS = ("#1d3557", "#e76f51", "#2a9d8f", "#e9c46a", "#8d99ae", "#6d597a", "#b56576")


@dataclass(frozen=True)
class Curve:
    """One item characteristic curve: P(theta) = c + (1 - c) / (1 + exp(-a (theta - b)))."""

    label: str
    a: float
    b: float
    c: float = 0.0


@dataclass(frozen=True)
class _Plot:
    """The charts' shared frame: 520 x 230, probability 0..1 up the y axis, x from ``lo``
    to ``hi``."""

    lo: float
    hi: float
    width: int = 520
    height: int = 230
    left: int = 44
    right: int = 12
    top: int = 14
    bottom: int = 36

    @property
    def w(self) -> int:
        return self.width - self.left - self.right

    @property
    def h(self) -> int:
        return self.height - self.top - self.bottom

    def x(self, t: float) -> float:
        return self.left + (t - self.lo) / (self.hi - self.lo) * self.w

    def y(self, p: float) -> float:
        return self.top + (1 - p) * self.h

    def frame(self, x_ticks: Sequence[float], x_label: str) -> list[str]:
        """Background, probability grid and labels, x ticks and the x axis' label."""
        left, top, w, h = self.left, self.top, self.w, self.h
        body = [f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#f7f9fb"/>']
        for p in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = self.y(p)
            body.append(
                f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e8ef"/>'
            )
            body.append(_text(left - 6, y + 4, f"{p:g}", anchor="end"))
        for t in x_ticks:
            if self.lo <= t <= self.hi:
                body.append(_text(self.x(t), top + h + 16, f"{t:g}", anchor="middle"))
        body.append(_text(left + w / 2, self.height - 4, x_label, anchor="middle"))
        return body

    def svg(self, body: list[str], title: str) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" font-family={quoteattr(FONT_FAMILY)} '
            f'role="img" aria-label={quoteattr(title)}><title>{escape(title)}</title>'
            + "".join(body)
            + "</svg>"
        )


def icc_svg(curves: Sequence[Curve], title: str, *, centre: float = 0.0) -> str:
    """The curves as an SVG chart (theta from centre - 4 to centre + 4 logits on x,
    probability correct on y), with a legend when there is more than one."""
    plot = _Plot(centre - 4.0, centre + 4.0)
    x, y = plot.x, plot.y
    theta = np.linspace(plot.lo, plot.hi, 121)
    body = plot.frame(nice_ticks(plot.lo, plot.hi, 9), "ability θ (logits)")
    points: list[tuple[np.ndarray, np.ndarray]] = []
    for k, cv in enumerate(curves):
        prob = cv.c + (1 - cv.c) / (1 + np.exp(-cv.a * (theta - cv.b)))
        points.append((np.array([x(t) for t in theta]), np.array([y(v) for v in prob])))
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(theta, prob, strict=True))
        colour = COLOURS[k % len(COLOURS)]
        dash = ' stroke-dasharray="6 4"' if k and len(curves) == 2 else ""
        body.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
    if len(curves) > 1:
        # The legend goes in the corner the curves cross least: top left (easy items pass
        # there) or bottom right (hard ones), on a backing so a crossing stays readable.
        box_w = 46 + 6.5 * max(len(cv.label) for cv in curves)
        box_h = 16 * len(curves) + 6
        corners = {
            "top left": (plot.left + 4, plot.top + 4),
            "bottom right": (plot.left + plot.w - 4 - box_w, plot.top + plot.h - 4 - box_h),
        }

        def crossings(corner: tuple[float, float]) -> int:
            bx, by = corner
            return sum(
                int(np.sum((px >= bx) & (px <= bx + box_w) & (py >= by) & (py <= by + box_h)))
                for px, py in points
            )

        bx, by = min(corners.values(), key=crossings)
        body.append(
            f'<rect x="{bx:.1f}" y="{by:.1f}" width="{box_w:.1f}" height="{box_h}" '
            'fill="#ffffff" fill-opacity="0.85" stroke="#e3e8ef"/>'
        )
        for k, cv in enumerate(curves):
            ly = by + 16 + 16 * k
            colour = COLOURS[k % len(COLOURS)]
            dash = ' stroke-dasharray="6 4"' if k and len(curves) == 2 else ""
            body.append(
                f'<line x1="{bx + 8:.1f}" x2="{bx + 32:.1f}" y1="{ly - 4:.1f}" '
                f'y2="{ly - 4:.1f}" stroke="{colour}" stroke-width="2"{dash}/>'
            )
            body.append(_text(bx + 38, ly, cv.label))
    return plot.svg(body, title)


def observed_svg(
    expected: Sequence[float], observed: Sequence[float], n: Sequence[float], title: str
) -> str:
    """The item's fit groups: observed against the model's expected proportion correct (one
    dot per group), the diagonal (a perfect fit) and, per group, the band chance allows
    around it (expected +- 2 binomial SEs). Dots outside their band are the misfit."""
    plot = _Plot(0.0, 1.0)
    x, y = plot.x, plot.y
    body = plot.frame((0.0, 0.25, 0.5, 0.75, 1.0), "model's expected proportion correct")
    body.append(
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" '
        'stroke="#8d99ae" stroke-dasharray="4 4"/>'
    )
    for e, o, k in zip(expected, observed, n, strict=True):
        half = 2 * float(np.sqrt(max(e * (1 - e), 1e-12) / max(k, 1.0)))
        lo, hi = max(0.0, e - half), min(1.0, e + half)
        body.append(
            f'<line x1="{x(e):.1f}" x2="{x(e):.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" '
            'stroke="#a8b3c2" stroke-width="6" stroke-linecap="round" opacity="0.6"/>'
        )
        outside = not lo <= o <= hi
        body.append(
            f'<circle cx="{x(e):.1f}" cy="{y(o):.1f}" r="4" '
            f'fill="{COLOURS[1] if outside else COLOURS[0]}"/>'
        )
    body.append(_text(plot.left + 8, plot.top + 14, "observed (dots) · chance band (bars)"))
    return plot.svg(body, title)


def _text(x: float, y: float, s: str, *, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" text-anchor="{anchor}" '
        f'fill="#52606d">{escape(s)}</text>'
    )


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None or v != v else format(v, spec)


def _p(v: float | None) -> str:
    if v is None or v != v:
        return "–"
    return "< 0.0001" if v < 1e-4 else f"{v:.4f}"


def page_data(
    assessment: Assessment,
    previous: pl.DataFrame,
    *,
    week_start: date,
    version: str,
    limit: int = PAGE_ITEMS,
) -> dict[str, Any]:
    """The page's data (every word and number, charts as SVG) for ``item_bank.qmd``.

    Args:
        assessment: the week's :class:`Assessment`.
        previous: last week's stored parameters (item_id, a, b, c), for the drift curves.
        week_start, version: what is judged.
        limit: items per section (worst first).
    """
    items = assessment.items
    mean = assessment.theta_mean
    prev = {
        str(r["item_id"]): r
        for r in previous.select("item_id", "a", "b", "c").iter_rows(named=True)
    }
    curves_by_item: dict[str, list[dict[str, Any]]] = {}
    if assessment.dif_curves.height:
        for r in assessment.dif_curves.iter_rows(named=True):
            curves_by_item.setdefault(str(r["item_id"]), []).append(r)

    def base(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "item_id": str(r["item_id"]),
            "a": _fmt(r["a"], ".2f"),
            "b": _fmt(r["b"], ".2f"),
            "n": f"{r['n_responses']:,}",
        }

    def this_week(r: dict[str, Any]) -> Curve:
        return Curve("this week", r["a"], r["b"], r["c"] or 0.0)

    groups_by_item = {
        str(r["item_id"]): r
        for r in (
            assessment.fit_groups.iter_rows(named=True) if assessment.fit_groups.height else []
        )
    }
    misfit = []
    for r in worst(items, "misfit", limit).iter_rows(named=True):
        g = groups_by_item.get(str(r["item_id"]))
        chart = (
            observed_svg(
                g["group_expected"], g["group_observed"], g["group_n"], f"Item {r['item_id']}"
            )
            if g is not None
            else icc_svg([this_week(r)], f"Item {r['item_id']}", centre=mean)
        )
        misfit.append(
            {
                **base(r),
                "statistic": f"S-X2 {_fmt(r['s_x2'], '.1f')} ({r['fit_df']} df)",
                "p": _p(r["fit_p"]),
                "chart": chart,
                "caption": (
                    f"Item {r['item_id']}: students grouped by the model's chance of a right "
                    "answer; each dot is a group's observed proportion correct, each bar the "
                    "range chance allows around the model. Red dots fall outside "
                    f"(S-X2 {_fmt(r['s_x2'], '.1f')} on {r['fit_df']} df, p {_p(r['fit_p'])}): "
                    "check the key, the wording and whether it can be guessed."
                ),
            }
        )
    drift = []
    for r in worst(items, "drift", limit).iter_rows(named=True):
        old = prev.get(str(r["item_id"]))
        curves = [this_week(r)]
        if old is not None:
            curves.append(Curve("last week", old["a"], old["b"], old["c"] or 0.0))
        shift = (r["b"] - old["b"]) if old is not None else float("nan")
        drift.append(
            {
                **base(r),
                "statistic": f"z(b) {_fmt(r['drift_z_b'], '.1f')}, z(a) "
                f"{_fmt(r['drift_z_a'], '.1f')}",
                "p": _p(r["drift_p"]),
                "chart": icc_svg(curves, f"Item {r['item_id']}", centre=mean),
                "caption": (
                    f"Item {r['item_id']} this week (solid) and last week (dashed), on the same "
                    f"scale: b moved {_fmt(shift, '+.2f')} logits. It was left out of the "
                    "week's scale link; a leaked or changed item drifts like this."
                ),
            }
        )
    dif = []
    dif_statistic = "LR" if assessment.dif_note is None else "score"
    for r in worst(items, "dif", limit).iter_rows(named=True):
        per_org = sorted(curves_by_item.get(str(r["item_id"]), []), key=lambda g: str(g["group"]))
        curves = [Curve(f"organisation {g['group']}", g["a"], g["b"], g["c"]) for g in per_org]
        dif.append(
            {
                **base(r),
                # A flagged item's statistic is the anchored re-test's LR; the screen's score
                # statistic where that could not run (assess._confirm, dif_note).
                "statistic": f"{dif_statistic} {_fmt(r['dif_lr'], '.1f')} ({r['dif_df']} df)",
                "p": _p(r["dif_p"]),
                "chart": icc_svg(curves or [this_week(r)], f"Item {r['item_id']}", centre=0.0),
                "caption": (
                    f"Item {r['item_id']} estimated separately in each organisation (the "
                    "reference organisation's scale): b differs by up to "
                    f"{_fmt(r['dif_max_b_shift'], '.2f')} logits between them. Students of "
                    "equal ability do not find it equally hard: check for content taught "
                    "differently or wording that favours one group."
                ),
            }
        )
    a = assessment
    orgs = a.dif_groups.height
    return {
        "title": "Item bank: the week's problem items",
        "week": f"Week of {week_start.isoformat()}",
        "version": f"calibration {version}",
        "summary": (
            f"{items.height:,} items. Misfit: {a.misfit} of {a.fit_tested} tested (chance "
            f"alone gives up to {a.misfit_expected_max}). Drift since last week: {a.drifted} "
            f"of {a.drift_tested} common items. DIF across organisations: "
            + (
                f"{a.dif_items} of {a.dif_tested} items ({orgs} organisations)."
                if orgs
                else "not tested."
            )
        ),
        "misfit": {
            "heading": "Misfitting items",
            "about": "Items whose answers depart from the model's curve more than chance "
            "allows (item fit given each student's other answers, p < 0.01), worst first."
            + (
                f" {a.misfit} of {a.fit_tested} is within what chance alone gives (up to "
                f"{a.misfit_expected_max}): expect some of these to be false alarms."
                if 0 < a.misfit <= a.misfit_expected_max
                else ""
            ),
            "entries": misfit,
            "none": "No item misfits this week.",
        },
        "drift": {
            "heading": "Drifted items",
            "about": "Items that changed since last week by more than their standard errors "
            "allow (Holm, 5%) and by at least 0.3 logit; they were left out of the scale link.",
            "entries": drift,
            "none": "No item drifted since last week."
            if a.drift_tested
            else "No drift test this week (no calibration last week to compare with).",
        },
        "dif": {
            "heading": "Items that differ across organisations (DIF)",
            "about": "Items that students of equal ability in different organisations find "
            "unequally hard: flagged by a score test of each item against all the others, "
            "then confirmed by a likelihood-ratio test anchored on the items that test "
            "cleared (Holm 5%, b differing by at least 0.4 logit).",
            "entries": dif,
            "none": f"No DIF test this week: {a.dif_note}."
            if a.dif_note
            else "No item differs across organisations this week.",
        },
        "footer": "SeedTest Analytics · item_quality · numbers on the calibration's linked "
        "scale; the table item_quality holds every item.",
    }


def render_page(data: dict[str, Any], qmd: Path | None = None) -> bytes:
    """The page as self-contained HTML (UTF-8) from :func:`page_data`'s data."""
    templates = convert_templates("en", qmd=qmd or quarto_dir() / "item_bank.qmd")
    return ReportRenderer(templates).html(data)


def page_key(prefix: str, week_start: date, model: str) -> str:
    """Where the week's page is stored: ``{prefix}/item_bank/{week_start}/{model}.html``
    (beside the students' ``{prefix}/{week_start}/...`` reports)."""
    return f"{prefix}/item_bank/{week_start.isoformat()}/{model}.html"


def store_page(
    store: ReportStore, prefix: str, week_start: date, model: str, body: bytes
) -> StoredObject:
    """Put the page into the report store (local folder or S3); a re-run replaces it."""
    return store.put(page_key(prefix, week_start, model), body, "text/html; charset=utf-8")
