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
  when |I_t| < 2 SE), ``E_t`` θ gain per study hour (null below 3 minutes a week), ``P``
  probability of reaching the goal θ by the goal date at the current pace, ``S`` probability
  of no active day in the next 14 days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from seedtest_assets.report_artifacts.charts import (
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

    topic_id: int
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

    user_id: int
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
        "no_goal": "설정된 목표가 없어요.",
        "theta_heading": "이번 주 실력 (θ)",
        "theta_headline": "θ {theta} ± {se}",
        "theta_interval": "95% 구간은 {lo} ~ {hi}예요.",
        "trend": "최근 추세는 주당 {slope}이에요.",
        "trend_none": "추세를 보려면 2주 이상의 기록이 필요해요.",
        "theta_missing": "이번 주에는 실력(θ) 추정치가 없어요. 문제를 풀면 다음 리포트에 나와요.",
        "theta_chart_title": "주별 실력(θ) 추이",
        "theta_chart_caption": "선: 주별 θ 추정치 · 음영: 95% 구간 · 점선: 목표",
        "band": "95% 구간",
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
        "E_t_none": "공부 시간이 너무 적어 계산하지 않았어요",
        "P_text": "목표 달성 가능성 {pct}% (지금 속도로 {goal_date}까지 θ {goal_theta})",
        "P_none": "목표가 없어 계산하지 않았어요",
        "S_text": "앞으로 2주 동안 학습하지 않을 위험 {pct}% ({band})",
        "S_none": "계산하지 않았어요",
        "S_low": "낮음",
        "S_mid": "보통",
        "S_high": "높음",
        "study_heading": "이번 주 학습",
        "study_summary": (
            "{days}일 동안 {minutes}분 문제를 풀었고, {attempts}문제 중 {correct}문제를 "
            "맞혔어요 (정답률 {accuracy}%)."
        ),
        "study_none": "이번 주에는 푼 문제가 없어요.",
        "topics_chart_title": "주제별 정답률과 풀이 시간",
        "col_topic": "주제",
        "col_attempts": "문제 수",
        "col_accuracy": "정답률",
        "col_minutes": "시간(분)",
        "col_theta": "주제 θ",
        "accuracy": "정답률",
        "minutes": "풀이 시간",
        "minutes_unit": "분",
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
        "no_goal": "No goal set.",
        "theta_heading": "This week's ability (θ)",
        "theta_headline": "θ {theta} ± {se}",
        "theta_interval": "95% interval {lo} to {hi}.",
        "trend": "Recent trend: {slope} per week.",
        "trend_none": "A trend needs at least 2 weeks of estimates.",
        "theta_missing": "No ability (θ) estimate this week: answer some questions and it "
        "appears in the next report.",
        "theta_chart_title": "Ability (θ) by week",
        "theta_chart_caption": "Line: weekly θ estimate · band: 95% interval · dashed: goal",
        "band": "95% interval",
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
        "E_t_none": "Not computed: too little study time",
        "P_text": "{pct}% chance of reaching your goal by {goal_date} at your current pace "
        "(θ {goal_theta})",
        "P_none": "Not computed: no goal set",
        "S_text": "{pct}% risk of not coming back in the next 2 weeks ({band})",
        "S_none": "Not computed",
        "S_low": "low",
        "S_mid": "medium",
        "S_high": "high",
        "study_heading": "This week's study",
        "study_summary": (
            "{minutes} minutes of answering on {days} days: {correct} of {attempts} answers "
            "correct ({accuracy}%)."
        ),
        "study_none": "No answers this week.",
        "topics_chart_title": "Accuracy and answering time by topic",
        "col_topic": "Topic",
        "col_attempts": "Answers",
        "col_accuracy": "Accuracy",
        "col_minutes": "Minutes",
        "col_theta": "Topic θ",
        "accuracy": "Accuracy",
        "minutes": "Answering time",
        "minutes_unit": " min",
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
    text = L["E_t_none"] if e_t is None else L["E_t_text"].format(value=_signed(e_t))
    out.append({"key": "E_t", "name": L["E_t"], "text": text})

    p = _num(kpis, "P")
    g_theta = _num(kpis, "goal_theta")
    g_theta = g_theta if g_theta is not None else goal_theta
    g_date = kpis.get("goal_date") or (goal_date.isoformat() if goal_date else None)
    if p is None:
        text = L["P_none"]
    else:
        text = L["P_text"].format(
            pct=_pct(p),
            goal_date=g_date or "?",
            goal_theta=_f(g_theta) if g_theta is not None else "?",
        )
    out.append({"key": "P", "name": L["P"], "text": text})

    s = _num(kpis, "S")
    if s is None:
        text = L["S_none"]
    else:
        band = L["S_low"] if s < 0.25 else L["S_mid"] if s < 0.5 else L["S_high"]
        text = L["S_text"].format(pct=_pct(s), band=band)
    out.append({"key": "S", "name": L["S"], "text": text})
    return out


# --------------------------------------------------------------------------- topics
def _ranked(topics: Sequence[TopicStats]) -> tuple[list[TopicStats], str]:
    """Topics with enough answers, ranked best first, and the measure used ("theta"/"accuracy")."""
    enough = [t for t in topics if t.n >= MIN_TOPIC_ANSWERS]
    if enough and all(t.theta is not None for t in enough):
        return sorted(enough, key=lambda t: (-t.theta, t.topic_id)), "theta"
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
    scored = [t for t in topics if t.n >= MIN_TOPIC_ANSWERS and t.theta is not None]
    if goal_theta is not None:
        target, key, margin = goal_theta, "practice_goal", 0.0
    elif theta is not None:
        target, key, margin = theta, "practice_overall", NO_GOAL_MARGIN
    else:
        return []
    below = [t for t in scored if t.theta < target - margin]
    below.sort(key=lambda t: (t.theta - target, t.topic_id))
    return [
        {
            "name": _topic_name(t, lang),
            "reason": L[key].format(theta=_f(t.theta), gap=_f(target - t.theta)),
        }
        for t in below[:MAX_PRACTICE]
    ]


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
    goal = (
        L["goal"].format(goal_theta=_f(goal_theta), goal_date=goal_date.isoformat())
        if goal_theta is not None and goal_date is not None
        else L["no_goal"]
    )

    # This week's θ: the week's mirt_ability row (the KPI row copies it; docs/irt.md).
    history = [h for h in inp.history if h[0] <= inp.week_start]
    this_week = next((h for h in reversed(history) if h[0] == inp.week_start), None)
    theta, se = (this_week[1], this_week[2]) if this_week else (None, None)
    if theta is None or se is None:
        theta, se = _num(kpis, "theta"), _num(kpis, "se")
    has_theta = theta is not None and se is not None
    if has_theta:  # the chart ends with the value printed above it
        history = [h for h in history if h[0] != inp.week_start]
        history.append((inp.week_start, theta, se))
    theta_block: dict[str, str] = {"missing": L["theta_missing"]}
    charts: dict[str, str] = {"theta": "", "topics": ""}
    if has_theta:
        # The growth line's slope: I_t of the KPI row, the same as the ability row's growth.
        slope = _num(kpis, "I_t")
        if slope is None and inp.growth is not None and math.isfinite(inp.growth):
            slope = float(inp.growth)
        theta_block.update(
            headline=L["theta_headline"].format(theta=_f(theta), se=_f(se)),
            interval=L["theta_interval"].format(lo=_f(theta - Z95 * se), hi=_f(theta + Z95 * se)),
            trend=(
                L["trend"].format(slope=_signed(slope)) if slope is not None else L["trend_none"]
            ),
        )
        points = [TrendPoint(h[0].strftime("%m-%d"), h[1], h[2]) for h in history]
        charts["theta"] = theta_trend_svg(
            points,
            goal=goal_theta,
            title=L["theta_chart_title"],
            goal_label=L["goal_line"].format(goal=_f(goal_theta)) if goal_theta is not None else "",
            band_label=L["band"],
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
        "summary": L["study_summary"].format(
            days=inp.active_days,
            minutes=f"{minutes:.0f}",
            attempts=attempts,
            correct=correct,
            accuracy=_pct(correct / attempts),
        )
        if attempts
        else L["study_none"]
    }
    topic_rows = [
        {
            "name": _topic_name(t, lang),
            "attempts": str(t.week_attempts),
            "accuracy": _pct(t.week_correct / t.week_attempts) + "%",
            "minutes": f"{t.week_minutes:.0f}",
            "theta": _f(t.theta) if t.theta is not None and t.n >= MIN_TOPIC_ANSWERS else "–",
        }
        for t in week_topics
    ]
    if week_topics:
        charts["topics"] = topic_bars_svg(
            [
                TopicBar(_topic_name(t, lang), t.week_correct / t.week_attempts, t.week_minutes)
                for t in week_topics
            ],
            title=L["topics_chart_title"],
            accuracy_label=L["accuracy"],
            minutes_label=L["minutes"],
            minutes_unit=L["minutes_unit"],
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
