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
    """One topic row: name, accuracy in [0, 1], minutes of answering (≥ 0), answers, and the
    topic θ as printed (``"–"`` when not estimated)."""

    name: str
    accuracy: float
    minutes: float
    attempts: int = 0
    theta: str = "–"


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
    band_label: str = "",
    axis_label: str = "θ",
    width: int = 640,
    height: int = 170,
) -> str:
    """θ per week with a 95% band (θ ± 1.96 SE), the latest value labelled, the goal dashed.

    With one week, the band is an error bar. The y axis is titled ``axis_label``; the goal's
    label sits in the right margin, outside the plot, so it never covers the data.

    Args:
        points: weeks in time order (at least one).
        goal: the student's goal θ, or None (no goal line).
        title: accessible title (also the SVG ``<title>``).
        goal_label: text beside the goal line, e.g. ``"목표 1.20"``.
        band_label: legend text for the band (top left), e.g. ``"95% 구간"``; "" = no legend
            (the report's caption says what is drawn).
        axis_label: the y axis title.
    """
    left, top, bottom = 58, 10, 28
    right = 16 + (int(text_width(goal_label, 11)) + 8 if goal is not None and goal_label else 0)
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
    # y axis title, left of the tick labels, halfway up
    body.append(_text(12, top + ph / 2 + 5, axis_label, size=14, anchor="middle", fill=ACCENT))
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
        if goal_label:
            body.append(_text(left + pw + 6, y(goal) + 4, goal_label, size=11, fill=GOAL))
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
    label_y = y(last.theta) - 9  # above the point, unless that is where the goal line runs
    if goal is not None and abs(label_y - 4 - y(goal)) < 9:
        label_y = y(last.theta) + 17
    body.append(
        _text(
            x(n - 1) - 8 if n > 1 else x(0) + 10,
            label_y,
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
            body.append(_text(x(i), height - 7, p.label, size=11, anchor="middle", fill=MUTED))
    if band_label:  # legend: band swatch and label (top left of the plot)
        body.append(f'<rect x="{left + 8}" y="{top + 3}" width="14" height="9" fill="{BAND}"/>')
        body.append(_text(left + 27, top + 11.5, band_label, size=11, fill=MUTED))
    return _svg(width, height, body, title)


def _minutes_text(minutes: float, unit: str) -> str:
    """Minutes rounded to whole minutes; under half a minute (but some) is "<1"."""
    return ("<1" if 0 < minutes < 0.5 else f"{minutes:.0f}") + unit


def topic_bars_svg(
    bars: Sequence[TopicBar],
    *,
    title: str,
    accuracy_label: str,
    minutes_label: str,
    minutes_unit: str,
    topic_label: str = "",
    attempts_label: str = "",
    theta_label: str = "",
    width: int = 640,
) -> str:
    """The week's topics as one table-like chart: a row per topic with its name, answers,
    accuracy (bar, 0-100%), minutes (bar, scaled to the largest) and topic θ.

    The header row names the columns; the answers and θ columns are drawn when their header
    is given (``attempts_label``, ``theta_label``). A bar chart and a table of the same
    numbers would say everything twice and take twice the page.

    Args:
        bars: topics in display order (at least one).
        accuracy_label, minutes_label: panel headings; ``minutes_unit`` follows each value
            (e.g. ``"분"`` or ``" min"``).
        topic_label, attempts_label, theta_label: headings of the name, answers and topic-θ
            columns.
    """
    row_h, head_h = 18, 20
    name_w = 186
    att_w = 56 if attempts_label else 0
    th_w = 58 if theta_label else 0
    gap = 16
    rest = width - name_w - att_w - th_w - 2 * gap
    acc_w = int(rest * 0.55)
    min_w = rest - acc_w - gap
    height = head_h + row_h * len(bars) + 4
    max_min = max((b.minutes for b in bars), default=0.0) or 1.0
    ax = name_w + att_w + gap
    mx = ax + acc_w + gap
    body = []
    if topic_label:
        body.append(_text(0, 14, topic_label, size=11, fill=MUTED, weight="bold"))
    if attempts_label:
        body.append(
            _text(
                name_w + att_w, 14, attempts_label, size=11, anchor="end", fill=MUTED, weight="bold"
            )
        )
    body.append(_text(ax, 14, accuracy_label, size=11, fill=MUTED, weight="bold"))
    body.append(_text(mx, 14, minutes_label, size=11, fill=MUTED, weight="bold"))
    if theta_label:
        body.append(_text(width, 14, theta_label, size=11, anchor="end", fill=MUTED, weight="bold"))
    body.append(
        f'<line x1="0" y1="{head_h - 2}" x2="{width}" y2="{head_h - 2}" stroke="{ACCENT}" '
        'stroke-width="1"/>'
    )
    for i, b in enumerate(bars):
        yy = head_h + i * row_h
        if i % 2 == 1:
            body.append(f'<rect x="0" y="{yy}" width="{width}" height="{row_h}" fill="#f7f9fb"/>')
        name = fit_text(b.name, name_w - 8, 12)
        body.append(_text(0, yy + 13, name, size=12))
        if attempts_label:
            body.append(_text(name_w + att_w, yy + 13, str(b.attempts), size=11, anchor="end"))
        acc = min(1.0, max(0.0, b.accuracy))
        track = acc_w - 40
        body.append(
            f'<rect x="{ax}" y="{yy + 3.5}" width="{_num(track)}" height="11" fill="{GRID}"/>'
        )
        body.append(
            f'<rect x="{ax}" y="{yy + 3.5}" width="{_num(track * acc)}" height="11" '
            f'fill="{ACCURACY}"/>'
        )
        body.append(_text(ax + track + 4, yy + 13, f"{acc * 100:.0f}%", size=11))
        mw = (min_w - 48) * (max(0.0, b.minutes) / max_min)
        body.append(
            f'<rect x="{mx}" y="{yy + 3.5}" width="{_num(mw)}" height="11" fill="{MINUTES}"/>'
        )
        body.append(_text(mx + mw + 4, yy + 13, _minutes_text(b.minutes, minutes_unit), size=11))
        if theta_label:
            body.append(_text(width, yy + 13, b.theta, size=11, anchor="end"))
    return _svg(width, height, body, title)
