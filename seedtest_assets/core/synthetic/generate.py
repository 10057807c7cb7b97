"""Synthetic exam data with exact ground truth (pure numpy + polars, fully vectorized).

:func:`generate` draws a :class:`Population`: one polars frame per warehouse table (the source
tables ``organizations``, ``users``, ``topics``, ``items``, ``exam_sessions``, ``attempts`` and
the ground-truth tables ``truth_items``, ``truth_users``, ``truth_theta_weekly``), with the
columns and dtypes of :mod:`seedtest_assets.core.warehouse.schema` (integers ``Int64``, timestamps
naive UTC ``Datetime("us")``, dates ``Date``).

The model, in the order it is drawn (one ``numpy.random.Generator(PCG64(seed))``, so the same
config always gives identical frames):

Items
    12 topics with Korean names. Each item has a slope ``a ~ LogNormal(log 1.2, 0.3)`` clipped
    to [0.4, 2.5] and a difficulty ``b ~ N(topic offset, 1)``; a quarter are 3PL
    multiple-choice items with guessing ``c ~ Beta(5, 17)`` (mean 0.23), the rest 2PL (c = 0).
    ``P(correct | theta) = c + (1 - c) / (1 + exp(-a (theta - b)))``.
Students
    ``theta0 ~ N(0, 1)`` (an academy effect N(0, 0.3^2) plus an individual part), growth
    ``g ~ N(0.05, 0.04^2)`` theta per week (about 10% negative). Most students exist before the
    period (``created_at`` up to 18 months before ``start``); ``join_fraction`` of them sign up
    during it, on a random day of week ``j0``, and only practise on later days.
Ability over time
    With ``t`` in weeks since ``start`` and ``j0`` the join week (0 for students created
    before ``start``)::

        theta(t) = theta0 + g * max(0, min(t, t_stop) - j0)

    ``t_stop`` is the index of the last week with activity for churned students (their ability
    freezes when they stop) and +inf otherwise. ``truth_theta_weekly`` holds ``theta(w)`` for
    every user and every week ``w = 0 .. weeks-1``; every response in week ``w`` is drawn with
    ``theta(w)``.
Churn
    ``P(churner) = sigmoid(alpha - 0.7 theta0 - 0.6 (g - 0.05) / 0.04 - log(rate / median
    rate))``: weak, stagnating and rarely-practising students leave more often; ``alpha`` is
    solved so that the mean probability is ``churn_fraction``. A churner's leaving week ``k``
    is uniform over the weeks after the join week; the session rate fades before it (x0.8,
    x0.6, x0.4, x0.25 in the four weeks before) and the week before ``k`` always has a last
    visit (at least one session). ``truth_users.churn_week`` is the *observed* first Monday
    with no more activity: the Monday after the churner's last session (= week ``k``), or, for
    a churner who never practised (signed up on the Sunday before leaving), the Monday after
    the sign-up day. No attempt of a churner is at or after ``churn_week``. Non-churners have
    ``churn_week`` NULL even if they happen to skip the last weeks.
Goals
    ``goal_fraction`` of the students have ``goal_theta = round(theta0 + U(0.3, 1.5), 2)`` and
    ``goal_date`` = the join Monday (``start`` for earlier sign-ups) + U{28 .. 112} days; the
    others have both NULL. ``reached_goal = goal_theta is not NULL and theta(t_goal) >=
    goal_theta`` with ``t_goal = (goal_date - start).days / 7`` (fractional weeks) in the
    formula above: stayers are extrapolated with their growth, churners keep their frozen
    ability.
Sessions
    Each student has a weekly rate (LogNormal around ``sessions_per_week``, clipped to
    [0.3, 4]); each week the count is Poisson(rate x Gamma(3, 1/3) week-to-week noise x
    pre-churn decay), at most one session per day, on distinct random days. Start hours follow
    Korean after-school habits (09-23 KST, peak 16-22 KST), stored in UTC (00-14 UTC, so a
    session never crosses a UTC midnight or a week boundary). Each session has
    ``5 + Binomial(15, 0.4)`` items (5-20) from 1-3 topics; the item is picked adaptively (the
    item of the topic whose ``b`` is nearest ``theta + N(0, 0.8^2)``, +-2 ranks of jitter) and
    never repeated inside a session.
Responses
    ``is_correct ~ Bernoulli(P(theta(w)))`` exactly (hints do not change it, so the IRT truth
    is exact). Hints are a symptom of struggling: ``P(hint) = sigmoid(-3.2 + 0.9 (b - theta) +
    1.2 [wrong])``, then ``1 + Binomial(2, 0.35)`` hints. Response time (ms) is LogNormal:
    ``log rt = log 35 s + speed_u + 0.3 (b - theta) + 0.15 [wrong] + 0.2 hints + N(0, 0.5^2)``
    clipped to [1 s, 10 min]. ``attempted_at`` is the session start plus the cumulative
    response times (the moment of answering); ``completed_at`` is the last answer, or NULL for
    3% abandoned sessions.
DIF
    With ``dif_items`` > 0, that many 2PL items with ``|b| < 1.5`` get differential item
    functioning: in half of the organisations (the focal ones, at least one) their
    difficulty is ``b +- dif_shift`` (the sign drawn per item), elsewhere ``b``. Items are
    still picked by their nominal ``b``. ``Population.truth_dif`` lists the planted
    (item, organisation, shift) rows; ``truth_items`` keeps the nominal ``b``.
Ids
    The product's ids are text, and so are the generated ones (``id_style="text"``, the
    default): ``u-000001`` students, ``org-001`` organisations, ``i-00001`` items, ``t-01``
    topics, ``s-00000001`` sessions (:data:`ID_FORMATS`; zero-padded, so text order is number
    order). ``id_style="integer"`` writes the same numbers as bare digits (``"1"``), the
    shape of a warehouse migrated from integer ids. Numbers: ``exam_sessions.session_id``
    follow ``started_at`` and ``attempts.id`` (1..N, an integer in both styles) follow
    ``attempted_at`` (ties broken by session) across the whole data set.

Scale: 100,000 students x 12 weeks gives about 10.5 million attempts in about 10 s on two
cores; there is no Python loop over students or attempts (only over weeks).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Literal

import numpy as np
import polars as pl

from seedtest_assets.core.settings import utc_now
from seedtest_assets.core.warehouse import schema
from seedtest_assets.core.warehouse.schema import FrameSchema

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
_EPOCH = date(1970, 1, 1)

# (Korean name, English name, difficulty offset on the theta scale, share of items/sessions)
TOPICS: tuple[tuple[str, str, float, float], ...] = (
    ("대수", "Algebra", -0.6, 0.11),
    ("방정식과 부등식", "Equations and inequalities", -0.4, 0.10),
    ("함수", "Functions", -0.2, 0.10),
    ("경우의 수", "Counting", -0.1, 0.07),
    ("기하", "Geometry", 0.0, 0.09),
    ("확률과 통계", "Probability and statistics", 0.1, 0.09),
    ("수열", "Sequences", 0.2, 0.08),
    ("지수와 로그", "Exponents and logarithms", 0.3, 0.08),
    ("행렬", "Matrices", 0.3, 0.05),
    ("삼각함수", "Trigonometric functions", 0.4, 0.08),
    ("벡터", "Vectors", 0.5, 0.05),
    ("미적분", "Calculus", 0.7, 0.10),
)

_CITIES = (
    "서울", "부산", "대구", "인천", "광주", "대전", "울산", "세종", "수원",
    "성남", "고양", "용인", "창원", "청주", "전주", "천안", "포항", "제주",
)  # fmt: skip
_ORG_STEMS = (
    "한빛", "푸른", "새봄", "다온", "미래", "으뜸", "지혜", "명문", "씨앗", "해오름",
    "누리", "가온", "별빛", "바른", "슬기", "온누리", "하늘", "참빛", "늘봄", "큰나무",
)  # fmt: skip
_ORG_SUFFIXES = ("학원", "수학학원", "에듀")
# The 25 most common Korean family names with their approximate population shares (%).
_FAMILY = (
    ("김", 21.5), ("이", 14.7), ("박", 8.4), ("최", 4.7), ("정", 4.4), ("강", 2.4),
    ("조", 2.1), ("윤", 2.1), ("장", 2.0), ("임", 1.7), ("한", 1.5), ("오", 1.5),
    ("서", 1.5), ("신", 1.4), ("권", 1.4), ("황", 1.4), ("안", 1.4), ("송", 1.4),
    ("류", 1.2), ("전", 1.1), ("홍", 1.1), ("고", 0.9), ("문", 0.9), ("양", 0.9),
    ("손", 0.9),
)  # fmt: skip
_GIVEN = tuple("민서지현준우예도하윤은수연재진영성호유아주원혜승태시채건다린")

# Session start hours: weights for 09..23 KST (school hours low, evenings high). KST = UTC+9,
# so index i is UTC hour i: the whole day of practice is 00..14 UTC of the same date.
_HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1.5, 2.5, 4, 7, 9, 10, 10, 10, 9, 7, 4], dtype=float)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()

# Session-rate multipliers in the 1, 2 and 3 weeks before a churner's planned leaving week.
_PRE_CHURN_DECAY = {1: 0.25, 2: 0.4, 3: 0.6, 4: 0.8}
_INCOMPLETE_FRACTION = 0.03
_GOAL_DAYS = (28, 112)  # goal_date offset from the join Monday, inclusive, days


# --------------------------------------------------------------------------- public types
#: ``text``: product-like ids (``u-000123``); ``integer``: the same numbers as bare digits.
IdStyle = Literal["text", "integer"]

#: id column -> (prefix, zero-padded width) of the ``text`` id style.
ID_FORMATS: dict[str, tuple[str, int]] = {
    "user_id": ("u-", 6),
    "org_id": ("org-", 3),
    "item_id": ("i-", 5),
    "topic_id": ("t-", 2),
    "session_id": ("s-", 8),
}


def format_id(column: str, number: int, style: IdStyle = "text") -> str:
    """The generated id of entity ``number`` (1-based) in id column ``column``, e.g.
    ``format_id("user_id", 3) == "u-000003"`` (``"3"`` in the ``integer`` style)."""
    if style == "integer":
        return str(number)
    prefix, width = ID_FORMATS[column]
    return f"{prefix}{number:0{width}d}"


def _id_expr(column: str, style: IdStyle) -> pl.Expr:
    """:func:`format_id` of an integer column, vectorized."""
    digits = pl.col(column).cast(pl.String)
    if style == "integer":
        return digits
    prefix, width = ID_FORMATS[column]
    return (pl.lit(prefix) + digits.str.zfill(width)).alias(column)


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. The frames are a deterministic function of all fields.

    ``start``: first Monday of the period (``None``: the Monday ``weeks`` weeks before the
    current week's Monday, UTC). ``n_items``: item bank size (``None``:
    ``min(2000, max(200, n_users // 20))``). ``churn_fraction``: mean churn probability (the
    realised share is a bit lower: late sign-ups cannot churn inside the period).
    ``join_fraction``: share of students who sign up during the period.
    ``sessions_per_week``: median individual session rate (sessions per week).
    ``n_orgs``: organisations (``None``: ``n_users // 200`` within [20, 50]).
    ``dif_items``: items with planted DIF (module doc, "DIF"); 0 plants none, and then
    nothing else changes. ``dif_shift``: their difficulty shift (logits) in the focal
    organisations.
    """

    n_users: int = 2000
    weeks: int = 8
    seed: int = 7
    start: date | None = None
    n_items: int | None = None
    churn_fraction: float = 0.25
    join_fraction: float = 0.2
    goal_fraction: float = 0.85
    sessions_per_week: float = 0.9
    id_style: IdStyle = "text"
    n_orgs: int | None = None
    dif_items: int = 0
    dif_shift: float = 1.0

    def __post_init__(self) -> None:
        if self.n_users < 1:
            raise ValueError(f"n_users must be >= 1, got {self.n_users}")
        if self.weeks < 1:
            raise ValueError(f"weeks must be >= 1, got {self.weeks}")
        if self.n_items is not None and self.n_items < len(TOPICS):
            raise ValueError(f"n_items must be >= {len(TOPICS)} (one per topic)")
        if self.start is not None and self.start.weekday() != 0:
            raise ValueError(f"start must be a Monday, got {self.start} ({self.start:%A})")
        for name in ("churn_fraction", "join_fraction", "goal_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.sessions_per_week <= 0:
            raise ValueError("sessions_per_week must be > 0")
        if self.n_orgs is not None and self.n_orgs < 1:
            raise ValueError(f"n_orgs must be >= 1, got {self.n_orgs}")
        if self.dif_items < 0:
            raise ValueError(f"dif_items must be >= 0, got {self.dif_items}")
        if self.id_style not in ("text", "integer"):
            raise ValueError(f"id_style must be 'text' or 'integer', got {self.id_style!r}")

    def resolved_start(self, today: date | None = None) -> date:
        """``start``, or the Monday ``weeks`` weeks before the current (UTC) week's Monday."""
        if self.start is not None:
            return self.start
        today = today or utc_now().date()
        return today - timedelta(days=today.weekday() + 7 * self.weeks)

    def resolved_n_items(self) -> int:
        """``n_items``, or ``min(2000, max(200, n_users // 20))``."""
        if self.n_items is not None:
            return self.n_items
        return min(2000, max(200, self.n_users // 20))


@dataclass(frozen=True)
class Population:
    """A generated data set: one frame per warehouse table, plus the period.

    ``start`` is the first Monday, ``end`` the exclusive end (``start + 7 * weeks`` days); all
    sessions and attempts lie in ``[start, end)``.
    """

    config: SyntheticConfig
    start: date
    end: date
    organizations: pl.DataFrame
    users: pl.DataFrame
    topics: pl.DataFrame
    items: pl.DataFrame
    exam_sessions: pl.DataFrame
    attempts: pl.DataFrame
    truth_items: pl.DataFrame
    truth_users: pl.DataFrame
    truth_theta_weekly: pl.DataFrame
    #: The planted DIF (not a warehouse table): item_id, org_id, b_shift, one row per
    #: (DIF item, focal organisation); empty when ``dif_items`` is 0.
    truth_dif: pl.DataFrame

    def tables(self) -> dict[str, pl.DataFrame]:
        """Table name -> frame, parents before children (the order to insert in)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in SCHEMAS}


#: Frame schemas of the generated tables, derived from the warehouse tables they are loaded
#: into (``schema.polars_schema``), in load order.
SCHEMAS: dict[str, FrameSchema] = {
    t.name: schema.polars_schema(t) for t in (*schema.SOURCE_TABLES, *schema.TRUTH_TABLES)
}

#: The same, with the id columns as numbers: what the draw builds before :func:`_styled`
#: writes them as ids.
_NUMBERED: dict[str, FrameSchema] = {
    name: {c: pl.Int64() if c in ID_FORMATS else t for c, t in cols.items()}
    for name, cols in SCHEMAS.items()
}


def _styled(frame: pl.DataFrame, table: str, style: IdStyle) -> pl.DataFrame:
    """``frame`` (numbered ids) with its id columns written in ``style``, cast to the table's
    schema."""
    ids = [_id_expr(c, style) for c in frame.columns if c in ID_FORMATS]
    return frame.with_columns(ids).cast(SCHEMAS[table])


def p_correct(theta: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The response model ``c + (1 - c) / (1 + exp(-a (theta - b)))``, elementwise."""
    return c + (1.0 - c) / (1.0 + np.exp(-a * (theta - b)))


def theta_at(
    t: np.ndarray, theta0: np.ndarray, growth: np.ndarray, j0: np.ndarray, t_stop: np.ndarray
) -> np.ndarray:
    """True ability at ``t`` weeks after ``start`` (all arrays broadcast; see module doc).

    ``j0``: join week index (0 if created before ``start``); ``t_stop``: last active week index
    for churners, ``inf`` for everyone else.
    """
    return theta0 + growth * np.maximum(0.0, np.minimum(t, t_stop) - j0)


# --------------------------------------------------------------------------- helpers
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _days(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - _EPOCH).days


def _split(total: int, shares: np.ndarray) -> np.ndarray:
    """``total`` split proportionally to ``shares`` (largest remainders), each part >= 1."""
    raw = shares / shares.sum() * (total - len(shares))
    counts = np.floor(raw).astype(np.int64) + 1
    rest = total - counts.sum()
    counts[np.argsort(-(raw - np.floor(raw)), kind="stable")[:rest]] += 1
    return counts


def _solve_intercept(x: np.ndarray, target: float) -> float:
    """``alpha`` with ``mean(sigmoid(alpha + x)) == target`` (bisection; monotone in alpha)."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(mid + x).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _dt(us: np.ndarray) -> pl.Series:
    """int64 microseconds since the epoch -> naive ``Datetime("us")``."""
    return pl.Series(us, dtype=pl.Int64).cast(pl.Datetime("us"))


def _as_date(days: np.ndarray) -> pl.Series:
    """int days since the epoch -> ``Date``."""
    return pl.Series(days.astype(np.int32), dtype=pl.Int32).cast(pl.Date)


def _pick_strings(values: tuple[str, ...], idx: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(pl.Series(idx, dtype=pl.UInt32))


# --------------------------------------------------------------------------- generation
@dataclass
class _Items:
    topic: np.ndarray  # (n_items,) topic index 0..T-1
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    order: np.ndarray  # item indices sorted by (topic, b)
    key: np.ndarray  # topic * 1000 + b in `order` order (for nearest-difficulty search)
    lo: np.ndarray  # (T,) first position of each topic in `order`
    hi: np.ndarray  # (T,) one past the last position


def _make_items(rng: np.random.Generator, n_items: int) -> _Items:
    n_topics = len(TOPICS)
    offsets = np.array([t[2] for t in TOPICS])
    counts = _split(n_items, np.array([t[3] for t in TOPICS]))
    # Item ids are shuffled across topics, like a real bank grown over time.
    topic = rng.permutation(np.repeat(np.arange(n_topics), counts))
    a = np.clip(rng.lognormal(np.log(1.2), 0.3, n_items), 0.4, 2.5)
    b = rng.normal(offsets[topic], 1.0)
    is_3pl = rng.random(n_items) < 0.25
    c = np.where(is_3pl, rng.beta(5.0, 17.0, n_items), 0.0)
    order = np.lexsort((b, topic))
    key = topic[order] * 1000.0 + b[order]
    lo = np.searchsorted(topic[order], np.arange(n_topics), side="left")
    hi = np.searchsorted(topic[order], np.arange(n_topics), side="right")
    return _Items(topic, a, b, c, order, key, lo, hi)


def _pick_items(
    rng: np.random.Generator, items: _Items, topic: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    """One item index per attempt: the topic's item nearest a noisy target difficulty."""
    target = np.clip(theta + rng.normal(0.0, 0.8, theta.size), -400.0, 400.0)
    pos = np.searchsorted(items.key, topic * 1000.0 + target)
    pos = pos + rng.integers(-2, 3, theta.size)
    pos = np.clip(pos, items.lo[topic], items.hi[topic] - 1)
    return items.order[pos]


def _dedupe_in_sessions(
    rng: np.random.Generator, items: _Items, sess: np.ndarray, topic: np.ndarray, item: np.ndarray
) -> np.ndarray:
    """Redraw repeated items inside a session (uniform within the topic); returns a keep-mask.

    A few rounds resolve nearly everything; what is left (a tiny topic asked more often than it
    has items) is dropped.
    """
    n_items = items.a.size
    for _ in range(8):
        key = sess * n_items + item
        order = np.argsort(key, kind="stable")
        dup = np.zeros(key.size, dtype=bool)
        dup[order[1:]] = key[order[1:]] == key[order[:-1]]
        if not dup.any():
            return np.ones(key.size, dtype=bool)
        t = topic[dup]
        span = items.hi[t] - items.lo[t]
        item[dup] = items.order[items.lo[t] + (rng.random(t.size) * span).astype(np.int64)]
    key = sess * n_items + item
    order = np.argsort(key, kind="stable")
    keep = np.ones(key.size, dtype=bool)
    keep[order[1:]] = key[order[1:]] != key[order[:-1]]
    return keep


def generate(cfg: SyntheticConfig) -> Population:
    """Draw a population for ``cfg`` (deterministic in all of ``cfg``'s fields; see module doc).

    Memory: about 120 bytes per attempt at peak (1.2 GB for 10 million attempts).
    """
    rng = np.random.Generator(np.random.PCG64(cfg.seed))
    start = cfg.resolved_start()
    weeks = cfg.weeks
    n = cfg.n_users
    start_day = _days(start)
    start_us = start_day * US_PER_DAY

    # ---- topics and items
    n_topics = len(TOPICS)
    items = _make_items(rng, cfg.resolved_n_items())
    log_topic_share = np.log(np.array([t[3] for t in TOPICS]))

    # ---- organisations
    n_orgs = cfg.n_orgs if cfg.n_orgs is not None else int(np.clip(n // 200, 20, 50))
    combos = rng.choice(len(_CITIES) * len(_ORG_STEMS) * len(_ORG_SUFFIXES), n_orgs, False)
    org_names = [
        f"{_CITIES[k // (len(_ORG_STEMS) * len(_ORG_SUFFIXES))]} "
        f"{_ORG_STEMS[(k // len(_ORG_SUFFIXES)) % len(_ORG_STEMS)]}"
        f"{_ORG_SUFFIXES[k % len(_ORG_SUFFIXES)]}"
        for k in combos
    ]
    org_size = rng.dirichlet(np.full(n_orgs, 2.0))
    org_effect = rng.normal(0.0, 0.3, n_orgs)

    # ---- students (latent)
    org = rng.choice(n_orgs, n, p=org_size)
    theta0 = org_effect[org] + rng.normal(0.0, np.sqrt(1.0 - 0.3**2), n)
    growth = rng.normal(0.05, 0.04, n)
    speed = rng.normal(0.0, 0.25, n)  # log response-time offset
    rate = np.clip(rng.lognormal(np.log(cfg.sessions_per_week), 0.5, n), 0.3, 4.0)

    dif_item_shift, focal = _plant_dif(cfg, items, n_orgs)
    focal_user = focal[org]

    joiner = (rng.random(n) < cfg.join_fraction) & (weeks > 1)
    j0 = np.where(joiner, rng.integers(0, weeks, n), 0)
    join_dow = rng.integers(0, 7, n)  # sign-up weekday of joiners; they practise from the next
    join_sec = rng.integers(0, 86_400, n)
    old_days = rng.integers(1, 540, n)  # pre-period sign-ups: days before start
    old_sec = rng.integers(0, 86_400, n)
    created_us = np.where(
        joiner,
        start_us + (7 * j0 + join_dow) * US_PER_DAY + join_sec * US_PER_SECOND,
        start_us - old_days * US_PER_DAY + old_sec * US_PER_SECOND,
    )

    # Churn propensity from observables: ability, growth, engagement.
    x = -0.7 * theta0 - 0.6 * (growth - 0.05) / 0.04 - 1.0 * np.log(rate / cfg.sessions_per_week)
    p_churn = _sigmoid(_solve_intercept(x, cfg.churn_fraction) + x)
    can_churn = j0 + 1 <= weeks - 1  # at least one week of membership before leaving
    churner = (rng.random(n) < p_churn) & can_churn
    # Planned leaving week, uniform over [j0 + 1, weeks - 1] (the low bound is clamped only to
    # keep numpy happy for students who cannot churn; they get `weeks`, i.e. never).
    k_plan = np.where(churner, rng.integers(np.minimum(j0 + 1, weeks - 1), weeks, n), weeks)

    has_goal = rng.random(n) < cfg.goal_fraction
    goal_gain = rng.uniform(0.3, 1.5, n)
    goal_offset = rng.integers(_GOAL_DAYS[0], _GOAL_DAYS[1] + 1, n)

    # ---- weekly sessions and attempts
    last_week = np.full(n, -1, dtype=np.int64)
    # One frame per week; concatenated without rechunking (no 10^7-row copy at the end).
    sess_parts: list[pl.DataFrame] = []
    att_parts: list[pl.DataFrame] = []
    next_sid, next_aid = 1, 1
    dow = np.arange(7)
    for w in range(weeks):
        active = (w >= j0) & (w < k_plan)
        decay = np.ones(n)
        for before, factor in _PRE_CHURN_DECAY.items():
            decay[churner & (k_plan - w == before)] = factor
        first_day = np.where(joiner & (w == j0), join_dow + 1, 0)
        avail = 7 - first_day
        mean = rate * decay * rng.gamma(3.0, 1.0 / 3.0, n) * avail / 7.0
        count = np.minimum(rng.poisson(mean), avail)
        # A churner's last visit: at least one session in the week before leaving (when the
        # week has a day to offer), so the observed churn week is the planned one.
        count = np.where(churner & (k_plan - w == 1), np.maximum(count, 1), count)
        count = np.where(active, np.minimum(count, avail), 0)
        who = np.flatnonzero(count)
        last_week[who] = w
        cnt = count[who]
        n_sess = int(cnt.sum())
        if n_sess == 0:
            continue

        # Sessions on distinct days (no one sits two sessions a day), none before sign-up.
        s_user = np.repeat(who, cnt)
        group = np.repeat(np.arange(who.size), cnt)
        pos = np.arange(n_sess) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        day_keys = rng.random((who.size, 7)) + (dow[None, :] < first_day[who][:, None])
        day = np.argsort(day_keys, axis=1)[group, pos]
        hour = rng.choice(_HOUR_P.size, n_sess, p=_HOUR_P)
        started = (
            start_us
            + (7 * w + day) * US_PER_DAY
            + hour * 3_600 * US_PER_SECOND
            + rng.integers(0, 3_600, n_sess) * US_PER_SECOND
        )
        n_att = 5 + rng.binomial(15, 0.4, n_sess)
        n_top = rng.choice(3, n_sess, p=[0.5, 0.3, 0.2]) + 1
        # Gumbel top-k: up to three distinct topics per session, weighted by popularity.
        top = np.argsort(-(log_topic_share + rng.gumbel(size=(n_sess, n_topics))), axis=1)
        top = top[:, :3]
        abandoned = rng.random(n_sess) < _INCOMPLETE_FRACTION

        # Attempts: topic from the session's topics, item near the student's ability.
        a_sess = np.repeat(np.arange(n_sess), n_att)
        a_user = s_user[a_sess]
        theta_w = theta_at(np.asarray(w), theta0, growth, j0, np.asarray(np.inf))
        theta = theta_w[a_user]
        topic = top[a_sess, (rng.random(a_sess.size) * n_top[a_sess]).astype(np.int64)]
        item = _pick_items(rng, items, topic, theta)
        keep = _dedupe_in_sessions(rng, items, a_sess, topic, item)
        if not keep.all():
            a_sess, a_user, theta, topic, item = (
                v[keep] for v in (a_sess, a_user, theta, topic, item)
            )
        n_att = np.bincount(a_sess, minlength=n_sess)

        ia, ib, ic = items.a[item], items.b[item], items.c[item]
        # Planted DIF moves the answer; hints and times follow the nominal b.
        ib_answer = ib + dif_item_shift[item] * focal_user[a_user] if cfg.dif_items else ib
        correct = rng.random(a_sess.size) < p_correct(theta, ia, ib_answer, ic)
        rel = ib - theta  # difficulty relative to ability
        wrong = (~correct).astype(float)
        hinted = rng.random(a_sess.size) < _sigmoid(-3.2 + 0.9 * rel + 1.2 * wrong)
        hints = np.where(hinted, 1 + rng.binomial(2, 0.35, a_sess.size), 0)
        log_rt = (
            np.log(35_000.0)
            + speed[a_user]
            + 0.3 * rel
            + 0.15 * wrong
            + 0.2 * hints
            + rng.normal(0.0, 0.5, a_sess.size)
        )
        rt = np.clip(np.rint(np.exp(log_rt)), 1_000, 600_000).astype(np.int64)

        # Answer times: session start + cumulative response times (ms -> us).
        cum = np.cumsum(rt)
        before = np.concatenate(([0], cum))[np.cumsum(n_att) - n_att]
        attempted = started[a_sess] + (cum - np.repeat(before, n_att)) * 1_000
        completed = started + (cum[np.cumsum(n_att) - 1] - before) * 1_000

        # Global ids follow time: sessions by start, attempts by answer time.
        s_order = np.lexsort((s_user, started))
        sid = np.empty(n_sess, dtype=np.int64)
        sid[s_order] = np.arange(next_sid, next_sid + n_sess)
        next_sid += n_sess
        a_sid = sid[a_sess]
        a_order = np.lexsort((a_sid, attempted))
        sess_parts.append(
            pl.DataFrame(
                {
                    "session_id": sid[s_order],
                    "user_id": s_user[s_order] + 1,
                    "started_at": _dt(started[s_order]),
                    "completed_at": _dt(completed[s_order]).set(
                        pl.Series(abandoned[s_order]), None
                    ),
                },
                schema=_NUMBERED["exam_sessions"],
            )
        )
        att_parts.append(
            pl.DataFrame(
                {
                    "id": np.arange(next_aid, next_aid + a_sess.size),
                    "user_id": a_user[a_order] + 1,
                    "session_id": a_sid[a_order],
                    "item_id": item[a_order] + 1,
                    "topic_id": topic[a_order] + 1,
                    "is_correct": correct[a_order],
                    "response_time_ms": rt[a_order],
                    "hints_used": hints[a_order],
                    "attempted_at": _dt(attempted[a_order]),
                },
                schema=_NUMBERED["attempts"],
            )
        )
        next_aid += a_sess.size

    # ---- truth: observed churn week, frozen ability, goals
    never = churner & (last_week < 0)
    churn_idx = np.where(never, np.where(joiner, j0 + 1, 0), last_week + 1)
    churn_idx = np.where(churner, churn_idx, -1)
    t_stop = np.where(churner, churn_idx - 1, np.inf)
    goal_theta = np.round(theta0 + goal_gain, 2)
    goal_day = start_day + 7 * j0 + goal_offset
    theta_goal = theta_at((goal_day - start_day) / 7.0, theta0, growth, j0, t_stop)
    reached = has_goal & (theta_goal >= goal_theta)

    frames = dict(
        organizations=_organizations_frame(org_names),
        users=_users_frame(rng, n, org, has_goal, goal_theta, goal_day, created_us),
        topics=pl.DataFrame(
            {
                "topic_id": np.arange(1, n_topics + 1),
                "name": [t[0] for t in TOPICS],
                "name_en": [t[1] for t in TOPICS],
            },
            schema=_NUMBERED["topics"],
        ),
        items=pl.DataFrame(
            {"item_id": np.arange(1, items.a.size + 1), "topic_id": items.topic + 1},
            schema=_NUMBERED["items"],
        ),
        exam_sessions=_concat(sess_parts, "exam_sessions"),
        attempts=_concat(att_parts, "attempts"),
        truth_items=pl.DataFrame(
            {
                "item_id": np.arange(1, items.a.size + 1),
                "topic_id": items.topic + 1,
                "model": np.where(items.c > 0, "3PL", "2PL"),
                "a": items.a,
                "b": items.b,
                "c": items.c,
            },
            schema=_NUMBERED["truth_items"],
        ),
        truth_users=pl.DataFrame(
            {
                "user_id": np.arange(1, n + 1),
                "theta0": theta0,
                "growth_per_week": growth,
                "churn_week": _as_date(start_day + 7 * churn_idx).set(pl.Series(~churner), None),
                "reached_goal": reached,
            },
            schema=_NUMBERED["truth_users"],
        ),
        truth_theta_weekly=_theta_weekly_frame(start_day, weeks, theta0, growth, j0, t_stop),
    )
    dif_item, dif_org = np.nonzero(dif_item_shift[:, None] * focal[None, :])
    truth_dif = pl.DataFrame(
        {
            "item_id": dif_item + 1,
            "org_id": dif_org + 1,
            "b_shift": dif_item_shift[dif_item],
        },
        schema={"item_id": pl.Int64, "org_id": pl.Int64, "b_shift": pl.Float64},
    ).with_columns(
        _id_expr("item_id", cfg.id_style).cast(pl.String),
        _id_expr("org_id", cfg.id_style).cast(pl.String),
    )
    return Population(
        config=cfg,
        start=start,
        end=start + timedelta(days=7 * weeks),
        **{name: _styled(f, name, cfg.id_style) for name, f in frames.items()},
        truth_dif=truth_dif,
    )


def _plant_dif(cfg: SyntheticConfig, items: _Items, n_orgs: int) -> tuple[np.ndarray, np.ndarray]:
    """The planted DIF: each item's difficulty shift in the focal organisations, float64
    (n_items,) (0 for the others), and which organisations are focal, bool (n_orgs,).

    Drawn from a stream of its own, so that planting DIF changes no other draw: the same
    seed gives the same students, organisations, items and sessions' items; what differs is
    the DIF items' answers in the focal organisations and what follows from an answer (a
    wrong one takes longer, so times and the attempts' time order move)."""
    shift = np.zeros(items.a.size)
    focal = np.zeros(n_orgs, dtype=bool)
    if cfg.dif_items == 0:
        return shift, focal
    rng = np.random.default_rng([cfg.seed, 16])
    # 2PL items of middling difficulty: answered often enough in every organisation for a
    # planted shift to be detectable at all.
    eligible = np.flatnonzero((items.c == 0) & (np.abs(items.b) < 1.5))
    chosen = rng.choice(eligible, min(cfg.dif_items, eligible.size), replace=False)
    shift[chosen] = cfg.dif_shift * rng.choice([-1.0, 1.0], chosen.size)
    focal[rng.choice(n_orgs, max(1, n_orgs // 2), replace=False)] = True
    return shift, focal


# --------------------------------------------------------------------------- frames
def _organizations_frame(names: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"org_id": np.arange(1, len(names) + 1), "name": names}, schema=_NUMBERED["organizations"]
    )


def _users_frame(
    rng: np.random.Generator,
    n: int,
    org: np.ndarray,
    has_goal: np.ndarray,
    goal_theta: np.ndarray,
    goal_day: np.ndarray,
    created_us: np.ndarray,
) -> pl.DataFrame:
    """Users with Korean names: family name by frequency + two distinct given syllables."""
    fam_p = np.array([f[1] for f in _FAMILY])
    fam = rng.choice(len(_FAMILY), n, p=fam_p / fam_p.sum())
    g1 = rng.integers(0, len(_GIVEN), n)
    g2 = (g1 + rng.integers(1, len(_GIVEN), n)) % len(_GIVEN)  # never the same syllable twice
    no_goal = pl.Series(~has_goal)
    frame = pl.DataFrame(
        {
            "user_id": np.arange(1, n + 1),
            "org_id": org + 1,
            "family": _pick_strings(tuple(f[0] for f in _FAMILY), fam),
            "g1": _pick_strings(_GIVEN, g1),
            "g2": _pick_strings(_GIVEN, g2),
            "goal_theta": pl.Series(goal_theta).set(no_goal, None),
            "goal_date": _as_date(goal_day).set(no_goal, None),
            "created_at": _dt(created_us),
        }
    )
    return frame.select(
        "user_id",
        "org_id",
        pl.concat_str("family", "g1", "g2").alias("display_name"),
        "goal_theta",
        "goal_date",
        "created_at",
    ).cast(_NUMBERED["users"])


def _concat(parts: list[pl.DataFrame], table: str) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=SCHEMAS[table])
    return pl.concat(parts, how="vertical", rechunk=False)


def _theta_weekly_frame(
    start_day: int,
    weeks: int,
    theta0: np.ndarray,
    growth: np.ndarray,
    j0: np.ndarray,
    t_stop: np.ndarray,
) -> pl.DataFrame:
    n = theta0.size
    w = np.tile(np.arange(weeks), n)
    u = np.repeat(np.arange(n), weeks)
    return pl.DataFrame(
        {
            "user_id": u + 1,
            "week_start": _as_date(start_day + 7 * w),
            "theta": theta_at(w, theta0[u], growth[u], j0[u], t_stop[u]),
        },
        schema=_NUMBERED["truth_theta_weekly"],
    )
