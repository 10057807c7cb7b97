"""The SVG chart builders: well-formed, escaped, scaled."""

import itertools
import xml.etree.ElementTree as ET

from seedtest_assets.core.report_artifacts.charts import (
    TopicBar,
    TrendPoint,
    fit_text,
    nice_ticks,
    theta_trend_svg,
    topic_bars_svg,
)

NS = "{http://www.w3.org/2000/svg}"


def test_trend_chart_is_valid_svg_with_band_goal_and_labels():
    pts = [TrendPoint(f"0{i}-01", 0.1 * i, 0.3) for i in range(1, 6)]
    svg = theta_trend_svg(pts, goal=1.2, title="주별 θ", goal_label="목표 1.20", band_label="95%")
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg" and root.get("viewBox") == "0 0 640 170"
    assert len(root.findall(f"{NS}polygon")) == 1  # the band
    assert len(root.findall(f"{NS}circle")) == 5
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "목표 1.20" in texts and "0.50" in texts and "05-01" in texts and "95%" in texts
    dashed = [ln for ln in root.findall(f"{NS}line") if ln.get("stroke-dasharray")]
    assert len(dashed) == 1


def test_trend_chart_has_an_axis_title_and_keeps_labels_apart():
    # θ ends right on the goal: the goal's label (right margin) and the value label must not
    # sit on each other (they did: "goal -0.12" over "-0.04").
    pts = [TrendPoint(f"0{i}-01", -0.3 + 0.05 * i, 0.5) for i in range(1, 6)]
    svg = theta_trend_svg(pts, goal=-0.06, title="t", goal_label="goal -0.06")
    root = ET.fromstring(svg)
    texts = {t.text: t for t in root.iter(f"{NS}text")}
    assert "θ" in texts  # the y axis title
    assert float(texts["θ"].get("x")) < 20  # left of the tick labels
    goal, value = texts["goal -0.06"], texts["-0.05"]
    grid_right = max(float(ln.get("x2")) for ln in root.findall(f"{NS}line"))
    assert float(goal.get("x")) > grid_right  # outside the plot: never over the data
    assert abs(float(goal.get("y")) - float(value.get("y"))) >= 9
    assert float(value.get("x")) <= grid_right
    # Without a goal: no dashed line, no goal label, no band legend unless asked.
    bare = ET.fromstring(theta_trend_svg(pts, goal=None, title="t", goal_label=""))
    assert not [ln for ln in bare.findall(f"{NS}line") if ln.get("stroke-dasharray")]
    assert not bare.findall(f"{NS}rect")


def test_trend_chart_with_one_week_draws_an_error_bar():
    svg = theta_trend_svg(
        [TrendPoint("11-16", -0.3, 0.4)], goal=None, title="t", goal_label="", band_label="b"
    )
    root = ET.fromstring(svg)
    assert not root.findall(f"{NS}polygon") and not root.findall(f"{NS}polyline")
    assert len(root.findall(f"{NS}circle")) == 1


def test_bars_escape_text_and_scale_minutes():
    bars = [TopicBar('<대수> & "x"', 0.5, 30.0), TopicBar("기하", 1.2, 15.0)]
    svg = topic_bars_svg(
        bars, title="t", accuracy_label="정답률", minutes_label="시간", minutes_unit="분"
    )
    root = ET.fromstring(svg)  # would raise if the name were not escaped
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert '<대수> & "x"' in texts and "100%" in texts and "30분" in texts
    assert "–" not in texts  # no answers/θ columns unless their headings are given
    widths = [
        float(r.get("width")) for r in root.findall(f"{NS}rect") if r.get("fill") == "#81b29a"
    ]
    assert widths[0] == 2 * widths[1]


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks = nice_ticks(-0.43, 1.37)
    assert ticks[0] <= -0.43 and ticks[-1] >= 1.37
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and steps.pop() in (0.25, 0.5)
    assert nice_ticks(1.0, 1.0)[0] <= 1.0


def test_long_names_are_shortened_to_the_column():
    assert fit_text("Probability and statistics", 178, 12) == "Probability and statistics"
    assert fit_text("확률과 통계와 미분과 적분의 응용 문제", 178, 12).endswith("…")
    assert (
        fit_text("확률과 통계와 미분과 적분의 응용 문제", 178, 12) == "확률과 통계와 미분과 적분의…"
    )


def test_topic_chart_is_a_table_with_answers_and_topic_theta():
    bars = [
        TopicBar("Equations and inequalities", 0.6, 22.0, attempts=15, theta="0.20"),
        TopicBar("Calculus", 0.0, 0.3, attempts=2, theta="–"),
    ]
    svg = topic_bars_svg(
        bars,
        title="t",
        accuracy_label="Accuracy",
        minutes_label="Answering time",
        minutes_unit=" min",
        topic_label="Topic",
        attempts_label="Answers",
        theta_label="Topic θ",
    )
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert texts[:5] == ["Topic", "Answers", "Accuracy", "Answering time", "Topic θ"]
    # The longest English topic name fits its column; 0.3 minutes is "<1", not "0".
    assert "Equations and inequalities" in texts and "15" in texts and "0.20" in texts
    assert "<1 min" in texts and "0 min" not in texts and "–" in texts
    assert root.get("viewBox") == f"0 0 640 {20 + 18 * 2 + 4}"
