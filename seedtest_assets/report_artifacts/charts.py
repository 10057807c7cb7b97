"""The report's two charts as SVG strings (pure Python, no plotting library).

Why not matplotlib: one matplotlib SVG figure costs tens of milliseconds plus ~0.5 s of import
per worker process (measured in ``benchmarks/reports.py``), against a budget of 0.1 s for the
whole report (HTML + PDF). These builders take tens of microseconds. The same SVG goes inline
into the HTML and into typst (``image(bytes(svg), format: "svg")``), which renders SVG text
with the report's font, so Korean labels work in both.

Coordinates are SVG user units (1 unit = 1 CSS px at 100% size); the charts scale to the page
width through their ``viewBox``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

#: Font stack: the shipped font first (typst has only it), then Korean system fonts.
FONT_FAMILY = (
    "'SeedTest Hangul', 'Apple SD Gothic Neo', 'Malgun Gothic', 'Noto Sans KR', sans-serif"
)
ACCENT = "#1d3557"
BAND = "#a8c5e6"
GOAL = "#e07a5f"
MUTED = "#6b7785"
GRID = "#e3e8ef"
ACCURACY = "#457b9d"
MINUTES = "#81b29a"


@dataclass(frozen=True)
class TrendPoint:
    """One week of the ability trend: x label (e.g. ``"11-16"``), θ and its SE (logits)."""

    label: str
    theta: float
    se: float


@dataclass(frozen=True)
class TopicBar:
    """One topic row: name, accuracy in [0, 1], minutes of answering (≥ 0)."""

    name: str
    accuracy: float
    minutes: float


def _num(x: float) -> str:
    """A coordinate with one decimal (SVG output stays small and stable)."""
    return f"{x:.1f}"


def _text(
    x: float,
    y: float,
    s: str,
    *,
    size: float = 12,
    anchor: str = "start",
    fill: str = "#1f2933",
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size:g}" text-anchor="{anchor}" '
        f'fill="{fill}"'
        + (f' font-weight="{weight}"' if weight != "normal" else "")
        + f">{escape(s)}</text>"
    )


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family={quoteattr(FONT_FAMILY)} role="img" '
        f"aria-label={quoteattr(title)}><title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def text_width(s: str, size: float) -> float:
    """Approximate rendered width of ``s`` at ``size`` (Hangul/CJK full width, Latin ~0.55)."""
    return size * sum(1.0 if ord(c) >= 0x1100 else 0.55 for c in s)


def fit_text(s: str, width: float, size: float) -> str:
    """``s``, shortened with "…" to fit ``width`` user units at font ``size``."""
    if text_width(s, size) <= width:
        return s
    while s and text_width(s + "…", size) > width:
        s = s[:-1]
    return s.rstrip() + "…"


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round tick values covering ``[lo, hi]`` with a step of 1, 2 or 5 × 10^k."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, max_ticks - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 10))
    return ticks


def theta_trend_svg(
    points: Sequence[TrendPoint],
    *,
    goal: float | None,
    title: str,
    goal_label: str,
    band_label: str,
    width: int = 640,
    height: int = 230,
) -> str:
    """θ per week with a 95% band (θ ± 1.96 SE), the latest value labelled, the goal dashed.

    Args:
        points: weeks in time order (at least one).
        goal: the student's goal θ, or None.
        title: accessible title (also the SVG ``<title>``).
        goal_label: text beside the goal line, e.g. ``"목표 1.20"``.
        band_label: legend text for the band, e.g. ``"95% 구간"``.
    """
    left, right, top, bottom = 44, 16, 26, 30
    pw, ph = width - left - right, height - top - bottom
    lows = [p.theta - 1.96 * p.se for p in points]
    highs = [p.theta + 1.96 * p.se for p in points]
    lo, hi = min(lows), max(highs)
    if goal is not None:
        lo, hi = min(lo, goal), max(hi, goal)
    pad = max(0.1, 0.08 * (hi - lo))
    ticks = nice_ticks(lo - pad, hi + pad, 6)
    y0, y1 = ticks[0], ticks[-1]
    n = len(points)

    def x(i: int) -> float:
        return left + (pw / 2 if n == 1 else pw * i / (n - 1))

    def y(v: float) -> float:
        return top + ph * (1 - (v - y0) / (y1 - y0))

    body: list[str] = []
    for t in ticks:  # grid and y labels
        body.append(
            f'<line x1="{left}" y1="{_num(y(t))}" x2="{left + pw}" y2="{_num(y(t))}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        body.append(_text(left - 6, y(t) + 4, f"{t:g}", size=11, anchor="end", fill=MUTED))
    if n > 1:  # the 95% band
        upper = " ".join(f"{_num(x(i))},{_num(y(v))}" for i, v in enumerate(highs))
        lower = " ".join(f"{_num(x(i))},{_num(y(v))}" for i, v in reversed(list(enumerate(lows))))
        body.append(f'<polygon points="{upper} {lower}" fill="{BAND}" fill-opacity="0.55"/>')
    else:  # one week: an error bar
        body.append(
            f'<line x1="{_num(x(0))}" y1="{_num(y(lows[0]))}" x2="{_num(x(0))}" '
            f'y2="{_num(y(highs[0]))}" stroke="{BAND}" stroke-width="8" stroke-linecap="round"/>'
        )
    if goal is not None:
        body.append(
            f'<line x1="{left}" y1="{_num(y(goal))}" x2="{left + pw}" y2="{_num(y(goal))}" '
            f'stroke="{GOAL}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        body.append(_text(left + pw, y(goal) - 5, goal_label, size=11, anchor="end", fill=GOAL))
    if n > 1:
        line = " ".join(f"{_num(x(i))},{_num(y(p.theta))}" for i, p in enumerate(points))
        body.append(
            f'<polyline points="{line}" fill="none" stroke="{ACCENT}" stroke-width="2.2" '
            'stroke-linejoin="round"/>'
        )
    for i, p in enumerate(points):
        r = 4.5 if i == n - 1 else 3
        body.append(f'<circle cx="{_num(x(i))}" cy="{_num(y(p.theta))}" r="{r}" fill="{ACCENT}"/>')
    last = points[-1]
    body.append(
        _text(
            x(n - 1) - 8 if n > 1 else x(0) + 10,
            y(last.theta) - 9,
            f"{last.theta:.2f}",
            size=12,
            anchor="end" if n > 1 else "start",
            fill=ACCENT,
            weight="bold",
        )
    )
    step = max(1, math.ceil(n / 12))  # at most ~12 x labels
    for i, p in enumerate(points):
        if i % step == 0 or i == n - 1:
            body.append(_text(x(i), height - 10, p.label, size=11, anchor="middle", fill=MUTED))
    # legend: band swatch and label (top left)
    body.append(f'<rect x="{left}" y="6" width="14" height="9" fill="{BAND}"/>')
    body.append(_text(left + 19, 14.5, band_label, size=11, fill=MUTED))
    return _svg(width, height, body, title)


def topic_bars_svg(
    bars: Sequence[TopicBar],
    *,
    title: str,
    accuracy_label: str,
    minutes_label: str,
    minutes_unit: str,
    width: int = 640,
) -> str:
    """Two aligned horizontal bar panels per topic: accuracy (0-100%) and minutes.

    Args:
        bars: topics in display order (at least one).
        accuracy_label, minutes_label: panel headings; ``minutes_unit`` follows each value
            (e.g. ``"분"`` or ``" min"``).
    """
    row_h, top = 24, 26
    name_w = 190
    gap = 24
    acc_w = int((width - name_w - gap - 8) * 0.58)
    min_w = width - name_w - gap - acc_w - 8
    height = top + row_h * len(bars) + 8
    max_min = max((b.minutes for b in bars), default=0.0) or 1.0
    ax = name_w
    mx = name_w + acc_w + gap
    body = [
        _text(ax, 16, accuracy_label, size=11, fill=MUTED, weight="bold"),
        _text(mx, 16, minutes_label, size=11, fill=MUTED, weight="bold"),
    ]
    for i, b in enumerate(bars):
        yy = top + i * row_h
        name = fit_text(b.name, name_w - 12, 12)
        body.append(_text(name_w - 8, yy + 15, name, size=12, anchor="end"))
        acc = min(1.0, max(0.0, b.accuracy))
        bar_w = (acc_w - 44) * acc
        body.append(
            f'<rect x="{ax}" y="{yy + 4}" width="{_num(acc_w - 44)}" height="14" fill="{GRID}"/>'
        )
        body.append(
            f'<rect x="{ax}" y="{yy + 4}" width="{_num(bar_w)}" height="14" fill="{ACCURACY}"/>'
        )
        body.append(_text(ax + acc_w - 40, yy + 15, f"{acc * 100:.0f}%", size=11))
        mw = (min_w - 56) * (max(0.0, b.minutes) / max_min)
        body.append(
            f'<rect x="{mx}" y="{yy + 4}" width="{_num(mw)}" height="14" fill="{MINUTES}"/>'
        )
        body.append(_text(mx + mw + 5, yy + 15, f"{b.minutes:.0f}{minutes_unit}", size=11))
    return _svg(width, height, body, title)
