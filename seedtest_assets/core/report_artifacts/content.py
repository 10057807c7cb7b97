"""What a weekly report says: per-student inputs -> the report data (pure functions, no I/O).

:func:`build_report` turns one student's :class:`StudentInputs` into the JSON-able dict that
``quarto/weekly_report.qmd`` lays out (every word already in the report's language, every
number already formatted; the templates only place them). The keys are the paths the ``.qmd``
uses, e.g. ``student.name``, ``kpis[].text``, ``topics[].accuracy``, ``charts.theta``.

Definitions used in the text (θ in logits on the IRT 2PL scale of ``mirt_item_params``):

- The week's θ and SE are ``mirt_ability.theta``/``se`` of the week (the KPI row carries the
  same values): the student's ability at the end of the week, read off the growth line fitted
  through their answers of the last 12 weeks (docs/irt.md, "One theta"). The same number is
  in the UI, the CLI and the API. The trend is that line's slope (``I_t``, logits per week);
  the chart shows the weekly values of earlier weeks' lines.
- The 95% interval is θ ± 1.96 SE.
- Topic θ: EAP ability from the student's answers in that topic over the look-back window
  (12 weeks, the window of ``mirt_ability``), with the week's item parameters. A topic needs
  :data:`MIN_TOPIC_ANSWERS` answers to count as strongest, weakest or "practise next".
- "Practise next": topics whose θ is below the goal θ (largest gap first, at most 3); with no
  goal, topics more than :data:`NO_GOAL_MARGIN` below the student's overall θ.
- The KPI sentences follow the ``weekly_kpi.kpis`` definitions (docs/kpis.md): ``I_t`` the
  growth rate, i.e. the expected θ change from last week to this one (logits; "not yet clear"
  when |I_t| < 2 SE), ``E_t`` θ gain per study hour (null below 3 minutes a week; a negative
  value says what it means and what to do), ``P`` probability of reaching the goal θ by the
  goal date at the current pace (worded as a back-cast once the date has passed), ``S``
  probability of no active day in the next 14 days, banded by :data:`S_BANDS` on the printed
  percentage. Probabilities below 0.5% or from 99.5% print as "less than 1%" / "over 99%".
- Korean sentences never glue a particle (이에요/예요, 이/가) to a number: its reading, not
  its last digit, decides the particle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from seedtest_assets.core.report_artifacts.charts import (
    TopicBar,
    TrendPoint,
    theta_trend_svg,
    topic_bars_svg,
)

LANGS = ("ko", "en")
MIN_TOPIC_ANSWERS = 5
NO_GOAL_MARGIN = 0.3  # logits below overall θ that make a topic "to practise" without a goal
MAX_PRACTICE = 3
MAX_STRENGTHS = 2
#: Rows of the week's topic chart: with more topics, the ones with least time share the last
#: row ("3 other topics"), so that the report stays on one page.
MAX_TOPIC_ROWS = 8
#: Weeks of answers behind θ, its growth line and topic θ (the window of ``mirt_ability``).
LOOKBACK_WEEKS = 12
#: Churn-risk bands on the printed percentage: below 25 low, 25-49 medium, 50 and up high
#: (docs/kpis.md: above 0.5 the student will probably not come back on their own).
S_BANDS = (25, 50)
#: z for a two-sided 95% interval.
Z95 = 1.96
#: |I_t| below this many SEs: "the trend is not yet clear" (docs/kpis.md).
TREND_CLEAR_SE = 2.0


@dataclass(frozen=True)
class TopicStats:
    """One topic of one student.

    ``week_*``: this report week (answers, correct, minutes of answering = summed response
    time). ``theta``/``se``/``n``: topic θ over the look-back window (None when no item
    parameters or no answers), ``n`` answers and ``n_correct`` of them correct in the window.
    """

    topic_id: str
    name: str
    name_en: str | None
    week_attempts: int = 0
    week_correct: int = 0
    week_minutes: float = 0.0
    n: int = 0
    n_correct: int = 0
    theta: float | None = None
    se: float | None = None


@dataclass(frozen=True)
class StudentInputs:
    """Everything one report needs (picklable: sent to the render worker processes).

    Attributes:
        user_id, name, org: the student, their display name and organisation name.
        week_start: the report week's Monday (the week is ``[week_start, week_start + 7 d)``).
        goal_theta, goal_date: the student's goal, or None.
        kpis: the ``weekly_kpi.kpis`` object of this week, or None when not computed yet.
        history: ``(week_start, theta, se)`` of the weekly ``mirt_ability`` rows up to this
            week, in time order.
        growth: this week's growth-line slope (``mirt_ability.growth``, logits per week), or
            None.
        topics: per-topic stats (topics with any answer in the window).
        active_days: distinct UTC days with an answer in the report week.
    """

    user_id: str
    name: str
    org: str
    week_start: date
    goal_theta: float | None = None
    goal_date: date | None = None
    kpis: Mapping[str, Any] | None = None
    history: Sequence[tuple[date, float, float]] = ()
    growth: float | None = None
    topics: Sequence[TopicStats] = ()
    active_days: int = 0


# --------------------------------------------------------------------------- labels
LABELS: dict[str, dict[str, str]] = {
    "ko": {
        "report_title": "주간 학습 리포트",
        "title": "{name} · {week} 주간 학습 리포트",
        "week": "{start} ~ {end}",
        "goal": "목표: {goal_date}까지 θ {goal_theta}",
        "goal_passed": "목표: {goal_date}까지 θ {goal_theta} (목표 날짜 지남)",
        "no_goal": "설정된 목표가 없어요.",
        "theta_heading": "이번 주 실력 (θ)",
        "theta_headline": "θ {theta} ± {se}",
        "theta_interval": "95% 구간은 {lo}부터 {hi}까지예요.",
        "trend_up": "추세: 1주에 θ가 {delta}씩 오르고 있어요",
        "trend_down": "추세: 1주에 θ가 {delta}씩 내려가고 있어요",
        "trend_flat": "추세: 1주에 θ가 거의 변하지 않아요",
        "trend_noise": " (아직 뚜렷하지 않아요)",
        "trend_none": "추세(성장선의 기울기)는 아직 계산되지 않았어요.",
        "theta_about": (
            "이 θ는 최근 {weeks}주 동안 푼 모든 문제로 그린 성장선에서 읽은 이번 주 마지막 "
            "날의 실력이고, 추세는 이 성장선의 기울기예요."
        ),
        "theta_about_no_line": "이 θ는 최근 {weeks}주 동안 푼 문제로 추정한 실력이에요.",
        "theta_missing": "이번 주에는 실력(θ) 추정치가 없어요. 문제를 풀면 다음 리포트에 나와요.",
        "theta_chart_title": "주별 실력(θ) 추이",
        "caption_line": "선과 점: 매주 그 주까지의 풀이로 계산한 θ",
        "caption_point": "점: 이번 주 θ",
        "caption_band": "음영: 95% 구간",
        "caption_bar": "막대: 95% 구간",
        "caption_goal": "점선: 목표 θ {goal}",
        "caption_sep": " · ",
        "theta_axis": "θ",
        "goal_line": "목표 {goal}",
        "kpi_heading": "핵심 지표",
        "kpis_missing": "이번 주 핵심 지표가 아직 계산되지 않았어요.",
        "I_t": "향상도",
        "E_t": "학습 효율",
        "P": "목표",
        "S": "이탈 위험",
        "I_t_up": "지난주보다 θ가 {delta} 올랐어요",
        "I_t_down": "지난주보다 θ가 {delta} 내려갔어요",
        "I_t_flat": "지난주와 θ가 같아요",
        "I_t_noise": " (아직 뚜렷한 추세는 아니에요)",
        "I_t_none": "지난주 추정치가 없어 변화를 계산하지 못했어요",
        "E_t_text": "공부 1시간당 θ {value}",
        "E_t_negative": (
            ": 공부하는 동안 실력 추정치가 내려갔다는 뜻이에요. 공부를 줄일 이유는 아니에요. "
            "틀린 문제를 다시 풀어 보고, 계속 어려운 주제는 선생님께 물어보세요"
        ),
        "E_t_noise": " (아직 뚜렷하지 않아요)",
        "E_t_none": "공부 시간이 너무 적어 계산하지 않았어요",
        "P_text": "지금 속도라면 {goal_date}까지 목표 θ {goal_theta}에 도달할 가능성 {pct}",
        "P_passed": (
            "목표 날짜({goal_date})가 지났어요. 그날까지 목표 θ {goal_theta}에 도달했을 "
            "가능성 {pct}"
        ),
        "P_none": "목표가 없어 계산하지 않았어요",
        "P_pending": "아직 계산되지 않았어요",
        "S_text": "앞으로 2주 동안 학습하지 않을 위험 {pct} ({band})",
        "S_none": "계산하지 않았어요",
        "S_low": "낮음",
        "S_mid": "보통",
        "S_high": "높음",
        "pct": "{pct}%",
        "pct_below": "1% 미만",
        "pct_above": "99% 초과",
        "study_heading": "이번 주 학습",
        "study_summary": (
            "이번 주에는 {days}{attempts}를 풀고 {correct}를 맞혔어요 "
            "(정답률 {accuracy}%, 풀이 시간 {minutes})."
        ),
        "study_summary_all": (
            "이번 주에는 {days}{attempts}를 풀고 모두 맞혔어요 (정답률 100%, 풀이 시간 {minutes})."
        ),
        "study_summary_zero": (
            "이번 주에는 {days}{attempts}를 풀었지만 맞힌 문제는 아직 없어요 (풀이 시간 {minutes})."
        ),
        "study_days_one": "하루 동안 ",
        "study_days": "{n}일 동안 ",
        "study_questions_one": "1문제",
        "study_questions": "{n}문제",
        "study_minutes_one": "1분",
        "study_minutes": "{n}분",
        "study_minutes_lt1": "1분 미만",
        "study_none": "이번 주에는 푼 문제가 없어요.",
        "topics_chart_title": "주제별 문제 수, 정답률, 풀이 시간과 주제 θ",
        "col_topic": "주제",
        "col_attempts": "문제 수",
        "col_theta": "주제 θ",
        "accuracy": "정답률",
        "minutes": "풀이 시간",
        "minutes_unit": "분",
        "topics_other": "그 외 {n}개 주제",
        "topics_note": "주제 θ: 최근 {weeks}주 풀이로 추정 (–: {n}문제 미만이라 추정하지 않음)",
        "strengths_heading": "강점과 약점",
        "strongest": "가장 강한 주제",
        "weakest": "보완이 필요한 주제",
        "detail_theta": "θ {theta} (최근 {n}문제, 정답률 {accuracy}%)",
        "detail_accuracy": "정답률 {accuracy}% (최근 {n}문제)",
        "strengths_missing": "강점과 약점을 판단하기에는 아직 풀이 기록이 부족해요.",
        "practice_heading": "다음에 연습할 주제",
        "practice_goal": "주제 θ {theta}, 목표보다 {gap} 낮아요",
        "practice_overall": "주제 θ {theta}, 전체 실력보다 {gap} 낮아요",
        "practice_done": "모든 주제가 목표 이상이에요. 지금처럼 고르게 연습하세요.",
        "practice_done_no_goal": "전체 실력보다 크게 뒤처진 주제가 없어요. 고르게 연습하세요.",
        "practice_no_data": "연습 주제를 추천하기에는 아직 풀이 기록이 부족해요.",
        "footer": (
            "θ(세타)는 문항반응이론(IRT, 2PL)으로 추정한 실력 점수예요. 0이 평균, 1은 "
            "표준편차 하나만큼 높은 실력이고, ± 값은 표준오차예요. 생성 {generated} UTC · "
            "학생 ID {user_id}"
        ),
    },
    "en": {
        "report_title": "Weekly learning report",
        "title": "{name} · weekly learning report · {week}",
        "week": "{start} to {end}",
        "goal": "Goal: θ {goal_theta} by {goal_date}",
        "goal_passed": "Goal: θ {goal_theta} by {goal_date} (goal date passed)",
        "no_goal": "No goal set.",
        "theta_heading": "This week's ability (θ)",
        "theta_headline": "θ {theta} ± {se}",
        "theta_interval": "95% interval: {lo} to {hi}.",
        "trend_up": "Trend: θ rising by {delta} per week",
        "trend_down": "Trend: θ falling by {delta} per week",
        "trend_flat": "Trend: θ about level (0.00 per week)",
        "trend_noise": " (not yet clear)",
        "trend_none": "No trend yet (the growth line's slope is not computed).",
        "theta_about": (
            "This θ is your ability at the end of this week, read off a growth line fitted "
            "through all your answers of the last {weeks} weeks; the trend is that line's slope."
        ),
        "theta_about_no_line": "This θ is estimated from your answers of the last {weeks} weeks.",
        "theta_missing": "No ability (θ) estimate this week: answer some questions and it "
        "appears in the next report.",
        "theta_chart_title": "Ability (θ) by week",
        "caption_line": "line and dots: θ as computed each week from the answers until then",
        "caption_point": "dot: this week's θ",
        "caption_band": "band: 95% interval",
        "caption_bar": "bar: 95% interval",
        "caption_goal": "dashed: goal θ {goal}",
        "caption_sep": " · ",
        "theta_axis": "θ",
        "goal_line": "goal {goal}",
        "kpi_heading": "Key indicators",
        "kpis_missing": "This week's key indicators are not computed yet.",
        "I_t": "Improvement",
        "E_t": "Efficiency",
        "P": "Goal",
        "S": "Churn risk",
        "I_t_up": "θ rose by {delta} since last week",
        "I_t_down": "θ fell by {delta} since last week",
        "I_t_flat": "θ is unchanged since last week",
        "I_t_noise": " (the trend is not yet clear)",
        "I_t_none": "No estimate for last week, so no change to report",
        "E_t_text": "{value} θ per hour of study",
        "E_t_negative": (
            ": your ability estimate went down while you studied. That is no reason to study "
            "less: redo the questions you got wrong and ask your teacher about topics that stay "
            "hard"
        ),
        "E_t_noise": " (not yet clear)",
        "E_t_none": "Not computed: too little study time",
        "P_text": "{pct} chance of reaching your goal θ {goal_theta} by {goal_date} at your "
        "current pace",
        "P_passed": "The goal date ({goal_date}) has passed: {pct} chance that θ had reached "
        "the goal {goal_theta} by then",
        "P_none": "Not computed: no goal set",
        "P_pending": "Not computed yet",
        "S_text": "{pct} risk of not coming back in the next 2 weeks ({band})",
        "S_none": "Not computed",
        "S_low": "low",
        "S_mid": "medium",
        "S_high": "high",
        "pct": "{pct}%",
        "pct_below": "less than 1%",
        "pct_above": "over 99%",
        "study_heading": "This week's study",
        "study_summary": (
            "This week you answered {attempts}{days} and got {correct} right ({accuracy}%), "
            "in {minutes} of answering."
        ),
        "study_summary_all": (
            "This week you answered {attempts}{days} and got them all right (100%), "
            "in {minutes} of answering."
        ),
        "study_summary_zero": (
            "This week you answered {attempts}{days}, none of them right yet, "
            "in {minutes} of answering."
        ),
        "study_days_one": " on 1 day",
        "study_days": " on {n} days",
        "study_questions_one": "1 question",
        "study_questions": "{n} questions",
        "study_minutes_one": "1 minute",
        "study_minutes": "{n} minutes",
        "study_minutes_lt1": "less than a minute",
        "study_none": "No answers this week.",
        "topics_chart_title": "Answers, accuracy, answering time and topic θ by topic",
        "col_topic": "Topic",
        "col_attempts": "Answers",
        "col_theta": "Topic θ",
        "accuracy": "Accuracy",
        "minutes": "Answering time",
        "minutes_unit": " min",
        "topics_other": "{n} other topics",
        "topics_note": "Topic θ: from the last {weeks} weeks' answers (–: fewer than {n} "
        "answers, not estimated)",
        "strengths_heading": "Strengths and weaknesses",
        "strongest": "Strongest topics",
        "weakest": "Topics to strengthen",
        "detail_theta": "θ {theta} ({n} recent answers, {accuracy}% correct)",
        "detail_accuracy": "{accuracy}% correct ({n} recent answers)",
        "strengths_missing": "Not enough answers yet to tell strengths from weaknesses.",
        "practice_heading": "What to practise next",
        "practice_goal": "topic θ {theta}, {gap} below your goal",
        "practice_overall": "topic θ {theta}, {gap} below your overall ability",
        "practice_done": "Every topic is at or above your goal: keep practising evenly.",
        "practice_done_no_goal": "No topic is far below your overall ability: keep practising "
        "evenly.",
        "practice_no_data": "Not enough answers yet to recommend topics.",
        "footer": (
            "θ (theta) is the ability score of item response theory (IRT, 2PL): 0 is average "
            "and 1 is one standard deviation above; ± is the standard error. Generated "
            "{generated} UTC · student ID {user_id}"
        ),
    },
}


def labels(lang: str) -> dict[str, str]:
    """The label set of ``lang`` ("ko" or "en")."""
    if lang not in LABELS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return LABELS[lang]


# --------------------------------------------------------------------------- formatting
def _f(x: float, digits: int = 2) -> str:
    """A number with fixed decimals; "-0.00" printed as "0.00"."""
    s = f"{x:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def _signed(x: float, digits: int = 2) -> str:
    s = _f(x, digits)
    return s if s.startswith("-") or float(s) == 0 else "+" + s


def _pct(p: float) -> str:
    return f"{100 * p:.0f}"


def _pct_text(p: float, L: Mapping[str, str]) -> str:
    """A probability as printed: "11%", and "less than 1%" / "over 99%" at the ends (a
    rounded "0%" or "100%" would claim certainty the model does not have)."""
    if p < 0.005:
        return L["pct_below"]
    if p >= 0.995:
        return L["pct_above"]
    return L["pct"].format(pct=_pct(p))


def churn_band(s: float) -> str:
    """ "low" | "mid" | "high" for churn risk ``s``, on the percentage as printed (so a risk
    shown as 50% is never "medium"); bands :data:`S_BANDS`."""
    shown = int(_pct(s))
    return "low" if shown < S_BANDS[0] else "mid" if shown < S_BANDS[1] else "high"


def _num(kpis: Mapping[str, Any] | None, key: str) -> float | None:
    """A finite float KPI, else None (missing, null or not a number)."""
    if not kpis:
        return None
    v = kpis.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _topic_name(t: TopicStats, lang: str) -> str:
    return t.name_en if lang == "en" and t.name_en else t.name


# --------------------------------------------------------------------------- KPI sentences
def kpi_sentences(
    kpis: Mapping[str, Any], lang: str, *, goal_theta: float | None, goal_date: date | None
) -> list[dict[str, str]]:
    """The four KPIs (I_t, E_t, P, S) in plain words: ``[{"key", "name", "text"}]``.

    Unknown (null) values get a sentence saying why, never a made-up number.
    """
    L = labels(lang)
    out = []

    i_t, i_se = _num(kpis, "I_t"), _num(kpis, "I_t_se")
    if i_t is None:
        text = L["I_t_none"]
    else:
        delta = _f(abs(i_t))
        text = L["I_t_flat"] if float(delta) == 0 else L["I_t_up" if i_t > 0 else "I_t_down"]
        text = text.format(delta=delta)
        # docs/kpis.md: "when |I_t| < 2 × I_t_se, the trend is not yet clear"
        if i_se is not None and float(delta) != 0 and abs(i_t) < TREND_CLEAR_SE * i_se:
            text += L["I_t_noise"]
    out.append({"key": "I_t", "name": L["I_t"], "text": text})

    e_t = _num(kpis, "E_t")
    if e_t is None:
        text = L["E_t_none"]
    else:
        value = _signed(e_t)
        text = L["E_t_text"].format(value=value)
        if value.startswith("-"):  # what a fall means for the student, and what to do
            e_se = _num(kpis, "E_t_se")
            if e_se is not None and abs(e_t) < TREND_CLEAR_SE * e_se:
                text += L["E_t_noise"]
            text += L["E_t_negative"]
    out.append({"key": "E_t", "name": L["E_t"], "text": text})

    p = _num(kpis, "P")
    g_theta = _num(kpis, "goal_theta")
    g_theta = g_theta if g_theta is not None else goal_theta
    g_date = kpis.get("goal_date") or (goal_date.isoformat() if goal_date else None)
    if p is None:  # "no goal" only when there is none (a goal set after the KPIs: pending)
        text = L["P_none"] if g_theta is None else L["P_pending"]
    else:
        # weeks_to_goal < 0: the goal date lies before the end of the week, P is back-cast
        # ("did they make it", docs/kpis.md).
        weeks_left = _num(kpis, "weeks_to_goal")
        text = L["P_passed" if weeks_left is not None and weeks_left < 0 else "P_text"].format(
            pct=_pct_text(p, L),
            goal_date=g_date or "?",
            goal_theta=_f(g_theta) if g_theta is not None else "?",
        )
    out.append({"key": "P", "name": L["P"], "text": text})

    s = _num(kpis, "S")
    if s is None:
        text = L["S_none"]
    else:
        text = L["S_text"].format(pct=_pct_text(s, L), band=L["S_" + churn_band(s)])
    out.append({"key": "S", "name": L["S"], "text": text})
    return out


# --------------------------------------------------------------------------- topics
def _ranked(topics: Sequence[TopicStats]) -> tuple[list[TopicStats], str]:
    """Topics with enough answers, ranked best first, and the measure used ("theta"/"accuracy")."""
    enough = [t for t in topics if t.n >= MIN_TOPIC_ANSWERS]
    if enough and all(t.theta is not None for t in enough):
        return sorted(enough, key=lambda t: (-(t.theta or 0.0), t.topic_id)), "theta"
    return sorted(enough, key=lambda t: (-t.n_correct / t.n, t.topic_id)), "accuracy"


def _detail(t: TopicStats, measure: str, L: Mapping[str, str]) -> str:
    acc = _pct(t.n_correct / t.n) if t.n else "0"
    if measure == "theta" and t.theta is not None:
        return L["detail_theta"].format(theta=_f(t.theta), n=t.n, accuracy=acc)
    return L["detail_accuracy"].format(accuracy=acc, n=t.n)


def strengths(
    topics: Sequence[TopicStats], lang: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(strongest, weakest) topics, at most :data:`MAX_STRENGTHS` each, never overlapping.

    Both are empty with fewer than 2 topics with enough answers.
    """
    L = labels(lang)
    ranked, measure = _ranked(topics)
    if len(ranked) < 2:
        return [], []
    k = min(MAX_STRENGTHS, len(ranked) // 2)
    best = [{"name": _topic_name(t, lang), "detail": _detail(t, measure, L)} for t in ranked[:k]]
    worst = [
        {"name": _topic_name(t, lang), "detail": _detail(t, measure, L)}
        for t in reversed(ranked[-k:])
    ]
    return best, worst


def practice_next(
    topics: Sequence[TopicStats], lang: str, *, goal_theta: float | None, theta: float | None
) -> list[dict[str, str]]:
    """Topics to practise next: θ below the goal (or well below overall θ), largest gap first."""
    L = labels(lang)
    # (topic, its θ) for topics with enough answers and a θ
    scored = [(t, t.theta) for t in topics if t.n >= MIN_TOPIC_ANSWERS and t.theta is not None]
    if goal_theta is not None:
        target, key, margin = goal_theta, "practice_goal", 0.0
    elif theta is not None:
        target, key, margin = theta, "practice_overall", NO_GOAL_MARGIN
    else:
        return []
    below = [(t, th) for t, th in scored if th < target - margin]
    below.sort(key=lambda p: (p[1] - target, p[0].topic_id))
    return [
        {
            "name": _topic_name(t, lang),
            "reason": L[key].format(theta=_f(th), gap=_f(target - th)),
        }
        for t, th in below[:MAX_PRACTICE]
    ]


# --------------------------------------------------------------------------- θ and study text
def _trend_text(slope: float | None, slope_se: float | None, L: Mapping[str, str]) -> str:
    """The growth line's slope per week in words ("not yet clear" when |slope| < 2 SE)."""
    if slope is None:
        return L["trend_none"]
    delta = _f(abs(slope))
    if float(delta) == 0:
        return L["trend_flat"] + "."
    text = L["trend_up" if slope > 0 else "trend_down"].format(delta=delta)
    if slope_se is not None and abs(slope) < TREND_CLEAR_SE * slope_se:
        text += L["trend_noise"]
    return text + "."


def theta_caption(n_weeks: int, goal_theta: float | None, L: Mapping[str, str]) -> str:
    """The θ chart's caption, naming only what :func:`charts.theta_trend_svg` draws: a line
    and a band from 2 weeks on (one week: a dot and an error bar), the goal line if any."""
    parts = (
        [L["caption_line"], L["caption_band"]]
        if n_weeks > 1
        else [L["caption_point"], L["caption_bar"]]
    )
    if goal_theta is not None:
        parts.append(L["caption_goal"].format(goal=_f(goal_theta)))
    text = L["caption_sep"].join(parts)
    return text[:1].upper() + text[1:]


def study_summary(days: int, minutes: float, attempts: int, correct: int, lang: str) -> str:
    """The week's study in one sentence: days, answers, correct, accuracy, minutes (singular
    and plural, "less than a minute", no answer right or all of them)."""
    L = labels(lang)
    if attempts <= 0:
        return L["study_none"]
    days_text = (
        "" if days <= 0 else L["study_days_one"] if days == 1 else L["study_days"].format(n=days)
    )

    def questions(n: int) -> str:
        return L["study_questions_one"] if n == 1 else L["study_questions"].format(n=n)

    shown = f"{minutes:.0f}"
    minutes_text = (
        L["study_minutes_lt1"]
        if minutes < 0.5
        else L["study_minutes_one"]
        if shown == "1"
        else L["study_minutes"].format(n=shown)
    )
    key = (
        "study_summary_zero"
        if correct <= 0
        else "study_summary_all"
        if correct >= attempts > 1
        else "study_summary"
    )
    return L[key].format(
        days=days_text,
        attempts=questions(attempts),
        correct=questions(correct) if lang == "ko" else str(correct),
        accuracy=_pct(correct / attempts),
        minutes=minutes_text,
    )


def _topic_theta(t: TopicStats) -> str:
    """Topic θ as printed: "–" below :data:`MIN_TOPIC_ANSWERS` answers or without items."""
    return _f(t.theta) if t.theta is not None and t.n >= MIN_TOPIC_ANSWERS else "–"


# --------------------------------------------------------------------------- the report
def build_report(inp: StudentInputs, lang: str, generated_at: datetime) -> dict[str, Any]:
    """The report data of one student (see the module docstring for the definitions).

    Args:
        inp: the student's inputs.
        lang: "ko" or "en".
        generated_at: naive UTC timestamp printed in the footer.

    Returns:
        A JSON-serializable dict whose keys are the paths used by ``weekly_report.qmd``.
    """
    L = labels(lang)
    week_end = inp.week_start + timedelta(days=6)
    week = L["week"].format(start=inp.week_start.isoformat(), end=week_end.isoformat())
    kpis = inp.kpis
    goal_theta = inp.goal_theta
    if goal_theta is None:
        goal_theta = _num(kpis, "goal_theta")
    goal_date = inp.goal_date
    if goal_date is None and kpis and kpis.get("goal_date"):
        goal_date = date.fromisoformat(str(kpis["goal_date"]))
    if goal_theta is not None and goal_date is not None:
        # Passed: the goal date is before the end of the report week (weeks_to_goal < 0).
        passed = goal_date < inp.week_start + timedelta(days=7)
        goal = L["goal_passed" if passed else "goal"].format(
            goal_theta=_f(goal_theta), goal_date=goal_date.isoformat()
        )
    else:
        goal = L["no_goal"]

    # This week's θ: the week's mirt_ability row (the KPI row copies it; docs/irt.md).
    history = [h for h in inp.history if h[0] <= inp.week_start]
    this_week = next((h for h in reversed(history) if h[0] == inp.week_start), None)
    theta, se = (this_week[1], this_week[2]) if this_week else (None, None)
    if theta is None or se is None:
        theta, se = _num(kpis, "theta"), _num(kpis, "se")
    has_theta = theta is not None and se is not None
    theta_block: dict[str, str] = {"missing": L["theta_missing"]}
    charts: dict[str, str] = {"theta": "", "topics": ""}
    if theta is not None and se is not None:
        # the chart ends with the value printed above it
        history = [h for h in history if h[0] != inp.week_start]
        history.append((inp.week_start, theta, se))
        # The growth line's slope: I_t of the KPI row, the same as the ability row's growth.
        slope = _num(kpis, "I_t")
        if slope is None and inp.growth is not None and math.isfinite(inp.growth):
            slope = float(inp.growth)
        theta_block.update(
            headline=L["theta_headline"].format(theta=_f(theta), se=_f(se)),
            interval=L["theta_interval"].format(lo=_f(theta - Z95 * se), hi=_f(theta + Z95 * se)),
            trend=_trend_text(slope, _num(kpis, "I_t_se"), L),
            about=L["theta_about" if slope is not None else "theta_about_no_line"].format(
                weeks=LOOKBACK_WEEKS
            ),
            caption=theta_caption(len(history), goal_theta, L),
        )
        points = [TrendPoint(h[0].strftime("%m-%d"), h[1], h[2]) for h in history]
        charts["theta"] = theta_trend_svg(
            points,
            goal=goal_theta,
            title=L["theta_chart_title"],
            goal_label=L["goal_line"].format(goal=_f(goal_theta)) if goal_theta is not None else "",
            axis_label=L["theta_axis"],
        )

    # This week's study, by topic (answers in the report week only).
    week_topics = sorted(
        (t for t in inp.topics if t.week_attempts > 0),
        key=lambda t: (-t.week_minutes, -t.week_attempts, t.topic_id),
    )
    attempts = sum(t.week_attempts for t in week_topics)
    correct = sum(t.week_correct for t in week_topics)
    minutes = sum(t.week_minutes for t in week_topics)
    study = {
        "summary": study_summary(inp.active_days, minutes, attempts, correct, lang),
        "topics_note": L["topics_note"].format(weeks=LOOKBACK_WEEKS, n=MIN_TOPIC_ANSWERS),
    }
    bars = [
        TopicBar(
            _topic_name(t, lang),
            t.week_correct / t.week_attempts,
            t.week_minutes,
            attempts=t.week_attempts,
            theta=_topic_theta(t),
        )
        for t in week_topics
    ]
    if len(bars) > MAX_TOPIC_ROWS:  # the page has room for so many rows: sum up the rest
        rest = week_topics[MAX_TOPIC_ROWS - 1 :]
        n_rest = sum(t.week_attempts for t in rest)
        bars[MAX_TOPIC_ROWS - 1 :] = [
            TopicBar(
                L["topics_other"].format(n=len(rest)),
                sum(t.week_correct for t in rest) / n_rest,
                sum(t.week_minutes for t in rest),
                attempts=n_rest,
                theta="",
            )
        ]
    topic_rows = [
        {
            "name": b.name,
            "attempts": str(b.attempts),
            "accuracy": _pct(b.accuracy) + "%",
            "minutes": "<1" if 0 < b.minutes < 0.5 else f"{b.minutes:.0f}",
            "theta": b.theta,
        }
        for b in bars
    ]
    if bars:
        charts["topics"] = topic_bars_svg(
            bars,
            title=L["topics_chart_title"],
            accuracy_label=L["accuracy"],
            minutes_label=L["minutes"],
            minutes_unit=L["minutes_unit"],
            topic_label=L["col_topic"],
            attempts_label=L["col_attempts"],
            theta_label=L["col_theta"],
        )

    strongest, weakest = strengths(inp.topics, lang)
    practice = practice_next(inp.topics, lang, goal_theta=goal_theta, theta=theta)
    scored_topics = any(t.n >= MIN_TOPIC_ANSWERS and t.theta is not None for t in inp.topics)
    return {
        "lang": lang,
        "title": L["title"].format(name=inp.name, week=week),
        "L": L,
        "student": {
            "user_id": str(inp.user_id),
            "name": inp.name,
            "org": inp.org,
            "week": week,
            "goal": goal,
        },
        "week_start": inp.week_start.isoformat(),
        "has_theta": has_theta,
        "theta": theta_block,
        "theta_value": theta,  # raw numbers for tests and metadata
        "se_value": se,
        "kpis_ready": kpis is not None,
        "kpis_missing": L["kpis_missing"],
        "kpis": kpi_sentences(kpis, lang, goal_theta=goal_theta, goal_date=goal_date)
        if kpis is not None
        else [],
        "study": study,
        "topics": topic_rows,
        "strongest": strongest,
        "weakest": weakest,
        "strengths_missing": L["strengths_missing"],
        "practice": practice,
        "practice_empty": (
            L["practice_no_data"]
            if not scored_topics
            else L["practice_done"]
            if goal_theta is not None
            else L["practice_done_no_goal"]
        ),
        "charts": charts,
        "footer": L["footer"].format(
            generated=generated_at.strftime("%Y-%m-%d %H:%M"), user_id=inp.user_id
        ),
    }


def report_charset(lang: str, extra: Sequence[str] = ()) -> str:
    """Every character a batch's reports can contain: labels, ASCII, and ``extra`` strings
    (names, organisations, topics). Used to subset the font embedded in the HTML."""
    chars = set(" ".join(labels(lang).values()))
    chars.update(chr(c) for c in range(0x20, 0x7F))
    chars.update("θ±–~·…%")
    for s in extra:
        chars.update(s)
    return "".join(sorted(chars))
