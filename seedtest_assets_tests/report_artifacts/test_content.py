"""The report's words and numbers (pure functions)."""

from datetime import datetime

import pytest

from seedtest_assets.report_artifacts.content import (
    LABELS,
    TopicStats,
    build_report,
    kpi_sentences,
    practice_next,
    report_charset,
    strengths,
)
from seedtest_assets_tests.report_artifacts.helpers import KPIS, sample_inputs

GEN = datetime(2026, 11, 23, 4, 0)


def texts(kpis, lang, **kw):
    return {
        s["key"]: s["text"]
        for s in kpi_sentences(kpis, lang, goal_theta=None, goal_date=None, **kw)
    }


def test_kpi_sentences_in_korean_and_english():
    ko, en = texts(KPIS, "ko"), texts(KPIS, "en")
    assert ko["P"].startswith("목표 달성 가능성 72%")
    assert en["P"].startswith("72% chance of reaching your goal by 2026-12-20")
    assert ko["I_t"] == "지난주보다 θ가 0.12 올랐어요"
    assert en["I_t"] == "θ rose by 0.12 since last week"
    assert ko["E_t"] == "공부 1시간당 θ +0.05" and en["E_t"] == "+0.05 θ per hour of study"
    assert ko["S"] == "앞으로 2주 동안 학습하지 않을 위험 18% (낮음)"
    assert en["S"] == "18% risk of not coming back in the next 2 weeks (low)"


def test_kpi_sentences_for_unknown_values_and_noise():
    nulls = dict.fromkeys(KPIS)
    ko = texts(nulls, "ko")
    assert ko["P"] == LABELS["ko"]["P_none"] and ko["I_t"] == LABELS["ko"]["I_t_none"]
    assert ko["E_t"] == LABELS["ko"]["E_t_none"] and ko["S"] == LABELS["ko"]["S_none"]
    # |I_t| < 2 SE: "the trend is not yet clear" (docs/kpis.md).
    en = texts({**KPIS, "I_t": -0.15, "I_t_se": 0.1}, "en")
    assert en["I_t"] == "θ fell by 0.15 since last week (the trend is not yet clear)"
    assert texts({**KPIS, "I_t": -0.25, "I_t_se": 0.1}, "en")["I_t"].endswith("last week")
    assert texts({**KPIS, "S": 0.61}, "en")["S"].endswith("(high)")
    assert texts({**KPIS, "S": 0.3}, "ko")["S"].endswith("(보통)")
    # Non-numbers never become numbers.
    assert texts({**KPIS, "P": "0.7"}, "en")["P"] == LABELS["en"]["P_none"]


def test_strengths_and_practice_by_topic_theta():
    topics = sample_inputs().topics
    best, worst = strengths(topics, "en")
    assert [t["name"] for t in best] == ["Algebra", "Probability and statistics"]
    assert [t["name"] for t in worst] == ["Calculus", "Equations and inequalities"]
    practice = practice_next(topics, "ko", goal_theta=1.2, theta=0.5)
    assert [p["name"] for p in practice] == ["미적분", "방정식과 부등식", "확률과 통계"]
    assert practice[0]["reason"] == "주제 θ -0.40, 목표보다 1.60 낮아요"
    # Without a goal: only topics well below overall θ.
    no_goal = practice_next(topics, "en", goal_theta=None, theta=0.5)
    assert [p["name"] for p in no_goal] == ["Calculus"]
    # Too few answers: no verdict.
    few = [TopicStats(1, "대수", None, n=3, n_correct=1, theta=-2.0, se=0.8)]
    assert strengths(few, "ko") == ([], [])
    assert practice_next(few, "ko", goal_theta=1.0, theta=0.0) == []


def test_strengths_fall_back_to_accuracy_without_item_parameters():
    topics = [
        TopicStats(1, "대수", None, n=10, n_correct=9),
        TopicStats(2, "기하", None, n=10, n_correct=3),
    ]
    best, worst = strengths(topics, "ko")
    assert best == [{"name": "대수", "detail": "정답률 90% (최근 10문제)"}]
    assert worst[0]["name"] == "기하"


def test_build_report_has_every_section():
    data = build_report(sample_inputs(), "ko", GEN)
    assert data["student"]["name"] == "김민서"
    assert data["theta"]["headline"] == "θ 0.52 ± 0.21"  # the week's ability row
    assert data["theta"]["interval"] == "95% 구간은 0.11 ~ 0.93예요."
    assert data["kpis_ready"] and [k["key"] for k in data["kpis"]] == ["I_t", "E_t", "P", "S"]
    assert [t["name"] for t in data["topics"]] == ["확률과 통계", "대수", "방정식과 부등식"]
    assert data["topics"][0] == {
        "name": "확률과 통계",
        "attempts": "25",
        "accuracy": "64%",
        "minutes": "41",
        "theta": "0.60",
    }
    assert data["study"]["summary"].startswith("3일 동안 94분")
    assert data["charts"]["theta"].startswith("<svg") and "0.52" in data["charts"]["theta"]
    topics_svg = data["charts"]["topics"]
    assert topics_svg.count('fill="#457b9d"') == 3 and topics_svg.count('fill="#81b29a"') == 3
    assert data["practice"] and data["strongest"] and data["weakest"]


def test_build_report_without_kpis_or_estimates():
    inp = sample_inputs(kpis=None)
    data = build_report(inp, "en", GEN)
    assert not data["kpis_ready"] and data["kpis"] == []
    assert data["kpis_missing"] == "This week's key indicators are not computed yet."
    # θ is the week's ability row, with or without a KPI row.
    assert data["theta"]["headline"] == "θ 0.52 ± 0.21"
    from dataclasses import replace

    bare = replace(inp, history=(), topics=(), active_days=0)
    data = build_report(bare, "en", GEN)
    assert not data["has_theta"] and data["charts"] == {"theta": "", "topics": ""}
    assert data["study"]["summary"] == "No answers this week."
    assert data["practice"] == [] and data["practice_empty"] == LABELS["en"]["practice_no_data"]


def test_unknown_language_is_rejected():
    with pytest.raises(ValueError, match="lang"):
        build_report(sample_inputs(), "fr", GEN)


def test_theta_and_trend_are_the_weeks_ability_row_and_growth_line():
    # One θ per student-week: the week's mirt_ability row, whatever else the KPI row holds;
    # the trend is the growth line's slope (I_t), not a fit through the weekly points.
    inp = sample_inputs()
    week = inp.week_start
    hist = (*[h for h in inp.history if h[0] != week], (week, -0.23, 0.35))
    from dataclasses import replace

    data = build_report(replace(inp, history=hist, kpis={**KPIS, "I_t": -0.038}), "en", GEN)
    assert data["theta_value"] == -0.23 and data["se_value"] == 0.35
    assert data["theta"]["headline"] == "θ -0.23 ± 0.35"
    assert "-0.04 per week" in data["theta"]["trend"]
    no_kpi = build_report(replace(inp, history=hist, kpis=None, growth=0.061), "en", GEN)
    assert "+0.06 per week" in no_kpi["theta"]["trend"]


def test_charset():
    chars = report_charset("ko", ["김민서"])
    assert {"김", "민", "서", "θ", "주", "A"} <= set(chars)
