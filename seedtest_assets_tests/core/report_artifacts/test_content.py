"""The report's words and numbers (pure functions)."""

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, datetime

import pytest

from seedtest_assets.core.report_artifacts.content import (
    LABELS,
    LANGS,
    MAX_TOPIC_ROWS,
    TopicStats,
    build_report,
    kpi_sentences,
    practice_next,
    report_charset,
    strengths,
    study_summary,
)
from seedtest_assets_tests.report_helpers import KPIS, sample_inputs

GEN = datetime(2026, 11, 23, 4, 0)


def texts(kpis, lang, **kw):
    return {
        s["key"]: s["text"]
        for s in kpi_sentences(kpis, lang, goal_theta=None, goal_date=None, **kw)
    }


def test_kpi_sentences_in_korean_and_english():
    ko, en = texts(KPIS, "ko"), texts(KPIS, "en")
    assert ko["P"] == "지금 속도라면 2026-12-20까지 목표 θ 1.20에 도달할 가능성 72%"
    assert en["P"] == "72% chance of reaching your goal θ 1.20 by 2026-12-20 at your current pace"
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
    # Non-numbers never become numbers (a goal exists: "not computed yet", not "no goal").
    assert texts({**KPIS, "P": "0.7"}, "en")["P"] == LABELS["en"]["P_pending"]
    no_goal = {**KPIS, "P": None, "goal_theta": None, "goal_date": None}
    assert texts(no_goal, "en")["P"] == LABELS["en"]["P_none"]


def test_goal_probability_names_the_goal_not_a_projection():
    """Reviewer: "목표 달성 가능성 11% (지금 속도로 2026-12-30까지 θ 1.53)" read as if θ 1.53
    were where the student would be; 1.53 is the goal θ."""
    kpis = {**KPIS, "P": 0.11, "goal_theta": 1.53, "goal_date": "2026-12-30"}
    ko, en = texts(kpis, "ko")["P"], texts(kpis, "en")["P"]
    assert "2026-12-30까지 목표 θ 1.53에 도달할 가능성 11%" in ko
    assert "11% chance of reaching your goal θ 1.53 by 2026-12-30" in en
    assert "(" not in ko and "(" not in en  # no parenthesised θ that reads as a projection
    # Goal date before the end of the week (weeks_to_goal < 0): P is a back-cast.
    past = texts({**kpis, "weeks_to_goal": -2.5}, "ko")["P"]
    assert past == ("목표 날짜(2026-12-30)가 지났어요. 그날까지 목표 θ 1.53에 도달했을 가능성 11%")
    assert texts({**kpis, "weeks_to_goal": -2.5}, "en")["P"].startswith(
        "The goal date (2026-12-30) has passed: 11% chance"
    )
    assert "지났어요" not in texts({**kpis, "weeks_to_goal": 0.0}, "ko")["P"]


def test_probabilities_near_0_or_1_are_not_printed_as_certain():
    assert texts({**KPIS, "P": 0.0004}, "ko")["P"].endswith("가능성 1% 미만")
    assert texts({**KPIS, "P": 0.0004}, "en")["P"].startswith("less than 1% chance")
    assert texts({**KPIS, "P": 0.9996}, "en")["P"].startswith("over 99% chance")
    assert (
        texts({**KPIS, "S": 0.001}, "ko")["S"]
        == "앞으로 2주 동안 학습하지 않을 위험 1% 미만 (낮음)"
    )
    assert texts({**KPIS, "P": 0.006}, "en")["P"].startswith("1% chance")


@pytest.mark.parametrize(
    ("s", "shown", "band"),
    [
        (0.10, "10%", "low"),
        (0.2449, "24%", "low"),
        (0.25, "25%", "medium"),
        (0.494, "49%", "medium"),
        (0.4963, "50%", "high"),  # the reviewer's "50% (보통)": printed 50, so high
        (0.5, "50%", "high"),
        (0.83, "83%", "high"),
    ],
)
def test_churn_band_reads_right_for_the_percentage_shown(s, shown, band):
    assert texts({**KPIS, "S": s}, "en")["S"] == (
        f"{shown} risk of not coming back in the next 2 weeks ({band})"
    )
    ko_band = {"low": "낮음", "medium": "보통", "high": "높음"}[band]
    assert texts({**KPIS, "S": s}, "ko")["S"].endswith(f"위험 {shown} ({ko_band})")


def test_churn_band_agrees_with_the_printed_number_everywhere():
    # Over the whole range: the band follows the printed percentage (< 25, 25-49, >= 50).
    for i in range(2001):
        s = i / 2000
        text = texts({**KPIS, "S": s}, "en")["S"]
        shown = text.split("%")[0].split()[-1]
        pct = 0 if text.startswith("less than") else 100 if text.startswith("over") else int(shown)
        want = "low" if pct < 25 else "medium" if pct < 50 else "high"
        assert text.endswith(f"({want})"), (s, text)


def test_negative_efficiency_says_what_it_means_and_what_to_do():
    kpis = {**KPIS, "I_t": -0.04, "E_t": -0.34}
    ko, en = texts(kpis, "ko")["E_t"], texts(kpis, "en")["E_t"]
    assert ko.startswith("공부 1시간당 θ -0.34: ")
    assert "실력 추정치가 내려갔다" in ko and "공부를 줄일 이유는 아니에요" in ko
    assert "틀린 문제를 다시 풀어" in ko
    assert en.startswith("-0.34 θ per hour of study: your ability estimate went down")
    assert "no reason to study less" in en and "redo the questions you got wrong" in en
    # A fall within 2 SE is flagged as not yet clear, before the guidance.
    unclear = texts({**kpis, "E_t_se": 0.2}, "ko")["E_t"]
    assert unclear.startswith("공부 1시간당 θ -0.34 (아직 뚜렷하지 않아요): 공부하는 동안")
    assert texts({**kpis, "E_t_se": 0.1}, "en")["E_t"].startswith("-0.34 θ per hour of study: ")
    # Not for zero or gains ("-0.003" prints as 0.00).
    assert texts({**KPIS, "E_t": -0.003}, "en")["E_t"] == "0.00 θ per hour of study"
    assert texts(KPIS, "ko")["E_t"] == "공부 1시간당 θ +0.05"


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
    assert data["theta"]["interval"] == "95% 구간은 0.11부터 0.93까지예요."
    assert data["kpis_ready"] and [k["key"] for k in data["kpis"]] == ["I_t", "E_t", "P", "S"]
    assert [t["name"] for t in data["topics"]] == ["확률과 통계", "대수", "방정식과 부등식"]
    assert data["topics"][0] == {
        "name": "확률과 통계",
        "attempts": "25",
        "accuracy": "64%",
        "minutes": "41",
        "theta": "0.60",
    }
    assert data["study"]["summary"] == (
        "이번 주에는 3일 동안 60문제를 풀고 42문제를 맞혔어요 (정답률 70%, 풀이 시간 94분)."
    )
    assert data["charts"]["theta"].startswith("<svg") and "0.52" in data["charts"]["theta"]
    topics_svg = data["charts"]["topics"]
    assert topics_svg.count('fill="#457b9d"') == 3 and topics_svg.count('fill="#81b29a"') == 3
    # The topic chart carries the table's columns: answers and topic θ per row.
    assert (
        ">25</text>" in topics_svg
        and ">0.60</text>" in topics_svg
        and ">–</text>" not in (topics_svg)
    )
    assert data["practice"] and data["strongest"] and data["weakest"]


def test_build_report_without_kpis_or_estimates():
    inp = sample_inputs(kpis=None)
    data = build_report(inp, "en", GEN)
    assert not data["kpis_ready"] and data["kpis"] == []
    assert data["kpis_missing"] == "This week's key indicators are not computed yet."
    # θ is the week's ability row, with or without a KPI row.
    assert data["theta"]["headline"] == "θ 0.52 ± 0.21"
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
    data = build_report(replace(inp, history=hist, kpis={**KPIS, "I_t": -0.038}), "en", GEN)
    assert data["theta_value"] == -0.23 and data["se_value"] == 0.35
    assert data["theta"]["headline"] == "θ -0.23 ± 0.35"
    assert data["theta"]["trend"] == "Trend: θ falling by 0.04 per week (not yet clear)."
    no_kpi = build_report(replace(inp, history=hist, kpis=None, growth=0.061), "en", GEN)
    assert no_kpi["theta"]["trend"] == "Trend: θ rising by 0.06 per week."


def test_charset():
    chars = report_charset("ko", ["김민서"])
    assert {"김", "민", "서", "θ", "주", "A"} <= set(chars)


def study(days, minutes, attempts, correct, lang):
    return study_summary(days, minutes, attempts, correct, lang)


def test_study_sentence_reads_naturally():
    """Reviewer: "1일 동안 6분 문제를 풀었고" (six-minute questions)."""
    assert study(1, 6.2, 7, 2, "ko") == (
        "이번 주에는 하루 동안 7문제를 풀고 2문제를 맞혔어요 (정답률 29%, 풀이 시간 6분)."
    )
    assert study(3, 94.0, 60, 42, "en") == (
        "This week you answered 60 questions on 3 days and got 42 right (70%), "
        "in 94 minutes of answering."
    )
    # One day, one question, a minute or less, none or all right.
    assert study(1, 0.2, 1, 1, "en") == (
        "This week you answered 1 question on 1 day and got 1 right (100%), "
        "in less than a minute of answering."
    )
    assert study(1, 0.2, 4, 0, "ko") == (
        "이번 주에는 하루 동안 4문제를 풀었지만 맞힌 문제는 아직 없어요 (풀이 시간 1분 미만)."
    )
    assert study(2, 1.1, 5, 5, "ko") == (
        "이번 주에는 2일 동안 5문제를 풀고 모두 맞혔어요 (정답률 100%, 풀이 시간 1분)."
    )
    assert "1 minute of" in study(2, 1.1, 5, 5, "en") and "1 days" not in study(1, 3, 2, 1, "en")
    assert study(0, 0.0, 0, 0, "ko") == LABELS["ko"]["study_none"]
    for lang in LANGS:
        for args in [(1, 6, 7, 2), (1, 0, 3, 1), (5, 120, 80, 80), (1, 0.4, 1, 0)]:
            text = study(*args, lang)
            assert "분 문제" not in text, text
            assert not re.search(r"(?<![\d.])0(분| minutes)", text), text
            assert "1일" not in text and "1 days" not in text and "1 questions" not in text, text


def test_theta_section_says_what_theta_and_trend_are():
    ko = build_report(sample_inputs(), "ko", GEN)["theta"]
    en = build_report(sample_inputs(), "en", GEN)["theta"]
    assert ko["about"] == (
        "이 θ는 최근 12주 동안 푼 모든 문제로 그린 성장선에서 읽은 이번 주 마지막 날의 "
        "실력이고, 추세는 이 성장선의 기울기예요."
    )
    assert "end of this week" in en["about"] and "growth line" in en["about"]
    assert "last 12 weeks" in en["about"] and "slope" in en["about"]
    # The trend is per week, in words (I_t = 0.12 ± 0.05: clear).
    assert ko["trend"] == "추세: 1주에 θ가 0.12씩 오르고 있어요."
    assert en["trend"] == "Trend: θ rising by 0.12 per week."
    noisy = replace(sample_inputs(), kpis={**KPIS, "I_t": -0.04, "I_t_se": 0.03})
    assert build_report(noisy, "en", GEN)["theta"]["trend"] == (
        "Trend: θ falling by 0.04 per week (not yet clear)."
    )
    assert "예요" not in ko["interval"].split("까지")[0]  # no particle glued to a number


def test_theta_caption_names_only_what_the_chart_draws():
    ns = "{http://www.w3.org/2000/svg}"
    inp = sample_inputs()
    no_goal = replace(inp, goal_theta=None, goal_date=None, kpis={**KPIS, "goal_theta": None})
    one_week = replace(inp, history=inp.history[-1:])
    for case in (inp, no_goal, one_week, replace(one_week, goal_theta=None, kpis=None)):
        for lang in LANGS:
            data = build_report(case, lang, GEN)
            caption, root = data["theta"]["caption"], ET.fromstring(data["charts"]["theta"])
            dashed = [ln for ln in root.iter(f"{ns}line") if ln.get("stroke-dasharray")]
            has_band = bool(root.findall(f"{ns}polygon"))
            L = LABELS[lang]
            assert (L["caption_goal"].split("{")[0].lower() in caption.lower()) == bool(dashed)
            assert (L["caption_band"].lower() in caption.lower()) == has_band
            assert (L["caption_bar"].lower() in caption.lower()) == (not has_band)
            assert data["theta"]["caption"][0].isupper() or lang == "ko"
    assert "점선" not in build_report(no_goal, "ko", GEN)["theta"]["caption"]
    assert "dashed" not in build_report(no_goal, "en", GEN)["theta"]["caption"].lower()
    assert build_report(inp, "ko", GEN)["theta"]["caption"].endswith("점선: 목표 θ 1.20")


def test_header_marks_a_goal_date_that_has_passed():
    inp = sample_inputs()  # week 2026-11-16 .. 11-22
    assert build_report(inp, "ko", GEN)["student"]["goal"] == "목표: 2026-12-20까지 θ 1.20"
    past = replace(inp, goal_date=date(2026, 11, 22))
    assert build_report(past, "en", GEN)["student"]["goal"] == (
        "Goal: θ 1.20 by 2026-11-22 (goal date passed)"
    )
    assert (
        "지남"
        not in build_report(replace(inp, goal_date=date(2026, 11, 23)), "ko", GEN)["student"][
            "goal"
        ]
    )


def test_many_topics_share_the_last_row():
    topics = tuple(
        TopicStats(i, f"주제{i}", f"Topic {i}", 10, 5, 20.0 - i, 30, 15, 0.1, 0.3)
        for i in range(1, 13)
    )
    data = build_report(replace(sample_inputs(), topics=topics), "ko", GEN)
    rows = data["topics"]
    assert len(rows) == MAX_TOPIC_ROWS
    assert [r["name"] for r in rows[:-1]] == [f"주제{i}" for i in range(1, MAX_TOPIC_ROWS)]
    assert rows[-1]["name"] == "그 외 5개 주제" and rows[-1]["attempts"] == "50"
    assert rows[-1]["accuracy"] == "50%" and rows[-1]["theta"] == ""
    assert "그 외 5개 주제" in data["charts"]["topics"]
    assert "(정답률 50%, 풀이 시간 162분)" in data["study"]["summary"]  # all topics counted
