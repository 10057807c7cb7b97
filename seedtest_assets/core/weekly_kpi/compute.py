"""The four weekly KPIs per student (pure polars/numpy/scipy; defined in docs/kpis.md).

For a week ``W`` (Monday) the KPIs are computed *as of* ``as_of``: the Monday after the week
for a finished week, today (UTC, 00:00) for the week in progress. Everything is per student:

``I_t`` improvement, logits per week
    The student's ability growth rate from the weekly linear-growth fit (``mirt_ability``'s
    ``growth``, :mod:`seedtest_assets.core.irt.growth`), i.e. the expected change in theta from the
    previous week to this one; ``I_t_se`` its posterior SD. Not the difference of two weekly
    thetas: that has an SE of ~0.4 against a typical change of ~0.05.
``E_t`` efficiency, logits per study hour
    ``I_t`` divided by the student's average weekly study time over the last ``recent_weeks``
    weeks (study time = summed response times). Null below ``min_study_hours`` per week.
``P`` goal probability, 0..1
    P(theta at ``goal_date`` >= ``goal_theta``) under the growth fit: theta + growth * h
    with h the weeks from the end of the ability's week to the goal date, normal with the
    fit's covariance. Null for students without a goal.
``S`` churn risk, 0..1
    P(no activity in the next ``horizon_days`` days), from recency, frequency and trend of
    activity (active days in each of the last 4 weeks, days since the last visit, attempts).
    A logistic regression fitted on this platform's own recent past (as-of dates 2, 3 and 4
    weeks earlier, whose next ``horizon_days`` are already observed), so it is calibrated to
    the population without any ground truth; cold start uses :data:`DEFAULT_CHURN_MODEL`.

Students covered: everyone with at least one active day in the ``recent_weeks`` weeks before
``as_of`` (this week's active students and those drifting away, whom S is for).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import expit, log_expit, ndtr

from seedtest_assets.core.features_topic_daily import table as features_table
from seedtest_assets.core.mirt_ability.table import ROWS_SCHEMA
from seedtest_assets.core.source import users
from seedtest_assets.core.warehouse.schema import FrameSchema
from seedtest_assets.core.weekly_kpi import table as kpi_table

#: Daily activity per student (features_topic_daily summed over topics).
ACTIVITY_SCHEMA: FrameSchema = dict(features_table.ACTIVITY_SCHEMA)

#: The weekly ability inputs (mirt_ability weekly rows, one per student): ``theta`` is the
#: growth line's ability at the end of the week.
ABILITY_SCHEMA: FrameSchema = {
    c: ROWS_SCHEMA[c]
    for c in ("user_id", "week_start", "theta", "se", "growth", "growth_se", "growth_cov")
}

GOALS_SCHEMA: FrameSchema = dict(users.GOALS_SCHEMA)

#: Columns of the wide result (the ``kpis`` JSON holds all but week_start and user_id).
#: The keys come from ``weekly_kpi``; the payload is hand-written: it is the JSON object's
#: fields, which no table column describes.
KPI_SCHEMA: FrameSchema = {
    **kpi_table.KEY_SCHEMA,
    "I_t": pl.Float64(),
    "I_t_se": pl.Float64(),
    "E_t": pl.Float64(),
    "E_t_se": pl.Float64(),
    "P": pl.Float64(),
    "S": pl.Float64(),
    "theta": pl.Float64(),
    "se": pl.Float64(),
    "theta_prev": pl.Float64(),
    "trend_per_week": pl.Float64(),
    "ability_week": pl.String(),
    "goal_theta": pl.Float64(),
    "goal_date": pl.String(),
    "weeks_to_goal": pl.Float64(),
    "active_this_week": pl.Boolean(),
    "active_days": pl.Int64(),
    "attempts": pl.Int64(),
    "correct": pl.Int64(),
    "accuracy": pl.Float64(),
    "study_minutes": pl.Float64(),
    "study_hours_per_week": pl.Float64(),
    "active_days_4w": pl.Int64(),
    "days_since_last": pl.Int64(),
}

#: Churn-model inputs, in coefficient order (after the intercept).
CHURN_FEATURES = ("d0", "d1", "d2", "d3", "days_since_last", "log_attempts")


@dataclass(frozen=True)
class KpiSettings:
    """Windows and thresholds (days / weeks / hours)."""

    recent_weeks: int = 4
    horizon_days: int = 14
    training_weeks: int = 3
    min_study_hours: float = 0.05
    #: Below this many training rows of either class the cold-start model is used.
    min_training_class: int = 50

    def history_days(self) -> int:
        """Days of daily activity needed before ``as_of``: the oldest training as-of date
        plus its own ``recent_weeks`` window (56 with the defaults)."""
        return self.horizon_days + 7 * (self.training_weeks - 1) + 7 * self.recent_weeks


@dataclass(frozen=True)
class ChurnModel:
    """Logistic regression on standardized :data:`CHURN_FEATURES`.

    ``coef`` = [intercept, one per feature]; ``mean``/``scale`` standardize the features.
    ``source`` is ``fitted`` or ``default``; ``n_train``/``base_rate`` describe the fit.
    """

    coef: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    source: str = "fitted"
    n_train: int = 0
    base_rate: float = float("nan")
    log_loss: float = float("nan")

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        """P(no activity in the horizon) per row of ``features`` (float64 (n,))."""
        x = _design(features, self.mean, self.scale)
        return expit(x @ np.asarray(self.coef))


#: Cold start (fewer than ``min_training_class`` examples of either outcome, i.e. less than ~6
#: weeks of history): the model fitted on the synthetic population (``seedtest generate``,
#: 5,000 students, seed 7; as-of dates 2026-09-07 .. 2026-10-12, 23,482 examples, 28% no-shows,
#: log-loss 0.546). Replaced by the platform's own fit as soon as its history allows. Signs:
#: more active days and attempts lower the risk, a longer absence raises it.
DEFAULT_CHURN_MODEL = ChurnModel(
    coef=(-1.056, -0.149, -0.14, -0.122, -0.081, 0.098, -0.444),
    mean=(1.014, 1.013, 1.012, 1.016, 7.292, 3.556),
    scale=(1.276, 1.273, 1.274, 1.275, 7.045, 0.739),
    source="default",
    n_train=23_482,
    base_rate=0.283,
    log_loss=0.546,
)


def activity_window(activity: pl.DataFrame, as_of: date, recent_weeks: int = 4) -> pl.DataFrame:
    """Activity features of every student active in the ``recent_weeks`` weeks before
    ``as_of`` (days ``[as_of - 7 recent_weeks, as_of)``).

    Returns one row per student: ``d0`` .. ``d{k-1}`` active days in the 7-day blocks ending at
    ``as_of`` (d0 = the last 7 days), ``days_since_last`` (0 = active on the day before
    ``as_of``), ``attempts``/``correct``/``study_ms`` over the window, ``log_attempts`` =
    log1p(attempts).
    """
    lo = as_of - timedelta(weeks=recent_weeks)
    days = activity.lazy().filter(
        (pl.col("date") >= lo) & (pl.col("date") < as_of) & (pl.col("attempts") > 0)
    )
    block = ((pl.lit(as_of) - pl.col("date")).dt.total_days() - 1) // 7
    return (
        days.with_columns(block=block)
        .group_by("user_id")
        .agg(
            *[
                (pl.col("block") == k).sum().cast(pl.Int64).alias(f"d{k}")
                for k in range(recent_weeks)
            ],
            days_since_last=((pl.lit(as_of) - pl.col("date").max()).dt.total_days() - 1).cast(
                pl.Int64
            ),
            attempts=pl.col("attempts").sum(),
            correct=pl.col("correct").sum(),
            study_ms=pl.col("study_ms").fill_null(0).sum(),
        )
        .with_columns(log_attempts=pl.col("attempts").cast(pl.Float64).log1p())
        .sort("user_id")
        .collect()
    )


def churn_training_set(
    activity: pl.DataFrame, as_of: date, settings: KpiSettings
) -> tuple[pl.DataFrame, np.ndarray]:
    """Past examples whose outcome is already observed: for as-of dates ``as_of - horizon -
    7 k`` (k < training_weeks), the activity features and y = 1 when the student had no
    active day in the ``horizon_days`` days that followed."""
    frames, labels = [], []
    for k in range(settings.training_weeks):
        past = as_of - timedelta(days=settings.horizon_days + 7 * k)
        feats = activity_window(activity, past, settings.recent_weeks)
        came_back = (
            activity.filter(
                (pl.col("date") >= past)
                & (pl.col("date") < past + timedelta(days=settings.horizon_days))
                & (pl.col("attempts") > 0)
            )
            .select("user_id")
            .unique()
        )
        y = ~feats["user_id"].is_in(came_back["user_id"].implode()).to_numpy()
        frames.append(feats.select(CHURN_FEATURES))
        labels.append(y.astype(np.float64))
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(CHURN_FEATURES, pl.Float64)), np.empty(0)
    return pl.concat(frames, how="vertical_relaxed"), np.concatenate(labels)


def fit_churn_model(
    features: pl.DataFrame, y: np.ndarray, *, l2: float = 1e-3, min_class: int = 50
) -> ChurnModel:
    """L2-regularized logistic regression (L-BFGS on the exact gradient), or the cold-start
    model when either class has fewer than ``min_class`` rows.

    Args:
        features: :data:`CHURN_FEATURES` columns, one row per example.
        y: float64 (n,), 1 = no activity in the horizon.
        l2: penalty on the standardized coefficients (not the intercept), per example.
    """
    positives = int(y.sum())
    if min(positives, y.size - positives) < min_class:
        return DEFAULT_CHURN_MODEL
    raw = features.select(CHURN_FEATURES).cast(pl.Float64).to_numpy()
    mean = raw.mean(axis=0)
    scale = np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)
    x = np.column_stack([np.ones(len(raw)), (raw - mean) / scale])
    sign = 2.0 * y - 1.0
    penalty = np.r_[0.0, np.full(x.shape[1] - 1, l2)]

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ beta
        value = -np.mean(log_expit(sign * z)) + 0.5 * np.sum(penalty * beta**2)
        grad = x.T @ (expit(z) - y) / len(y) + penalty * beta
        return float(value), grad

    res = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B")
    z = x @ res.x
    return ChurnModel(
        coef=tuple(float(v) for v in res.x),
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        source="fitted",
        n_train=int(y.size),
        base_rate=float(y.mean()),
        log_loss=float(-np.mean(log_expit(sign * z))),
    )


def _design(
    features: pl.DataFrame, mean: tuple[float, ...], scale: tuple[float, ...]
) -> np.ndarray:
    raw = features.select(CHURN_FEATURES).cast(pl.Float64).to_numpy()
    return np.column_stack([np.ones(len(raw)), (raw - np.asarray(mean)) / np.asarray(scale)])


def goal_probability(
    theta: np.ndarray,
    se: np.ndarray,
    growth: np.ndarray,
    growth_se: np.ndarray,
    growth_cov: np.ndarray,
    weeks_to_goal: np.ndarray,
    goal_theta: np.ndarray,
    weeks_absent: np.ndarray | None = None,
) -> np.ndarray:
    """P(ability at the goal date >= goal) if the student keeps practising at their pace.

    The ability at the goal date is ``theta + growth * (h - a)`` (``theta``: the growth line
    at the end of the ability's week): h = ``weeks_to_goal``
    (weeks from the end of the ability's week; negative when the date has passed: then the
    line is back-cast) and a = ``weeks_absent`` for a goal still ahead (the line was
    extrapolated through the student's current absence, but nothing was learnt then). With
    (theta, growth) normal with the fit's covariance, the ability is normal with
    ``var = se^2 + k^2 growth_se^2 + 2 k cov`` (k = h - a), and P = Phi((mean - goal) / sd).
    Whether the student keeps coming is S's job, not P's (docs/kpis.md).

    All arguments float64 (n,) (logits, logits/week, weeks); NaN in -> NaN out.
    """
    k = weeks_to_goal
    if weeks_absent is not None:
        k = k - np.where(np.nan_to_num(weeks_to_goal) > 0, np.nan_to_num(weeks_absent), 0.0)
    mean = theta + growth * k
    var = se**2 + k * k * growth_se**2 + 2.0 * k * growth_cov
    return ndtr((mean - goal_theta) / np.sqrt(np.maximum(var, 1e-12)))


@dataclass
class KpiResult:
    """The wide KPI frame (:data:`KPI_SCHEMA`) and the churn model used."""

    kpis: pl.DataFrame
    churn_model: ChurnModel


def compute_weekly_kpi(
    activity: pl.DataFrame,
    abilities: pl.DataFrame,
    goals: pl.DataFrame,
    *,
    week_start: date,
    as_of: date,
    settings: KpiSettings | None = None,
) -> KpiResult:
    """All four KPIs for every student active in the ``recent_weeks`` weeks before ``as_of``.

    Args:
        activity: :data:`ACTIVITY_SCHEMA`, daily per student, covering at least
            ``settings.history_days()`` days before ``as_of``.
        abilities: :data:`ABILITY_SCHEMA`, the weekly rows of the latest calibrated week on or
            before ``week_start`` (students without one get null I_t, E_t, P and theta).
            ``theta`` is ``mirt_ability.theta``: the growth line's ability at the end of that
            week, the one theta every reader sees; ``theta_prev`` = the same line one week
            earlier (``theta - growth``), so theta_prev + I_t = theta exactly.
        goals: :data:`GOALS_SCHEMA` (null goal -> null P).
        week_start: the partition's Monday; as_of: exclusive end of the data used (a date in
            ``[week_start, week_start + 7]``; the Monday itself = nothing of the week yet).

    Returns:
        :class:`KpiResult`, ``kpis`` sorted by user_id.
    """
    settings = settings or KpiSettings()
    if not week_start <= as_of <= week_start + timedelta(days=7):
        raise ValueError(f"as_of {as_of} must be within the week of {week_start}")
    activity = activity.cast(ACTIVITY_SCHEMA)
    window = activity_window(activity, as_of, settings.recent_weeks)
    train_x, train_y = churn_training_set(activity, as_of, settings)
    model = fit_churn_model(train_x, train_y, min_class=settings.min_training_class)
    s_risk = model.predict(window) if window.height else np.empty(0)

    week = (
        activity.filter(
            (pl.col("date") >= week_start) & (pl.col("date") < as_of) & (pl.col("attempts") > 0)
        )
        .group_by("user_id")
        .agg(
            active_days=pl.len().cast(pl.Int64),
            week_attempts=pl.col("attempts").sum(),
            week_correct=pl.col("correct").sum(),
            week_study_ms=pl.col("study_ms").fill_null(0).sum(),
        )
    )
    ability = abilities.cast({k: v for k, v in ABILITY_SCHEMA.items() if k in abilities.columns})
    ability = ability.with_columns(growth_cov=pl.col("growth_cov").fill_null(0.0))
    recent_weeks = float(settings.recent_weeks)
    frame = (
        window.with_columns(S=pl.Series(s_risk, dtype=pl.Float64))
        .join(week, on="user_id", how="left")
        .join(ability, on="user_id", how="left")
        .join(goals.cast(GOALS_SCHEMA), on="user_id", how="left")
        .with_columns(
            hours=pl.col("study_ms") / 3.6e6 / recent_weeks,
            ref=pl.col("week_start") + pl.duration(days=7),
        )
        .with_columns(
            weeks_to_goal=(pl.col("goal_date") - pl.col("ref")).dt.total_days() / 7.0,
        )
    )

    def col(c: str) -> np.ndarray:
        return frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy()

    p = goal_probability(
        col("theta"),
        col("se"),
        col("growth"),
        col("growth_se"),
        col("growth_cov"),
        col("weeks_to_goal"),
        col("goal_theta"),
        weeks_absent=(frame["days_since_last"].cast(pl.Float64).to_numpy() + 1.0) / 7.0,
    )
    enough = pl.col("hours") >= settings.min_study_hours
    out = frame.with_columns(P=pl.Series(p).fill_nan(None)).select(
        pl.lit(week_start).alias("week_start"),
        "user_id",
        I_t=pl.col("growth"),
        I_t_se=pl.col("growth_se"),
        E_t=pl.when(enough).then(pl.col("growth") / pl.col("hours")),
        E_t_se=pl.when(enough).then(pl.col("growth_se") / pl.col("hours")),
        P="P",
        S="S",
        theta="theta",
        se="se",
        theta_prev=pl.col("theta") - pl.col("growth"),
        trend_per_week=pl.col("growth"),
        ability_week=pl.col("week_start").cast(pl.String),
        goal_theta="goal_theta",
        goal_date=pl.col("goal_date").cast(pl.String),
        weeks_to_goal="weeks_to_goal",
        active_this_week=pl.col("active_days").fill_null(0) > 0,
        active_days=pl.col("active_days").fill_null(0),
        attempts=pl.col("week_attempts").fill_null(0),
        correct=pl.col("week_correct").fill_null(0),
        accuracy=pl.col("week_correct") / pl.col("week_attempts"),
        study_minutes=pl.col("week_study_ms").fill_null(0) / 60_000.0,
        study_hours_per_week="hours",
        active_days_4w=pl.sum_horizontal(*[f"d{k}" for k in range(settings.recent_weeks)]),
        days_since_last="days_since_last",
    )
    return KpiResult(out.cast(KPI_SCHEMA).sort("user_id"), model)


def kpi_rows(kpis: pl.DataFrame, updated_at: datetime) -> pl.DataFrame:
    """``weekly_kpi`` table rows: week_start, user_id, kpis (JSON text), updated_at.

    JSON is encoded by polars (vectorized); null stays null, floats are plain numbers. A
    non-finite float (which the ``finite_values`` check reports) is stored as null, because
    JSON has no NaN.
    """
    payload = [c for c in KPI_SCHEMA if c not in ("week_start", "user_id")]
    floats = [c for c in payload if KPI_SCHEMA[c].is_float()]
    kpis = kpis.with_columns(
        pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in floats
    )
    return kpis.select(
        "week_start",
        "user_id",
        kpis=pl.struct(payload).struct.json_encode(),
        updated_at=pl.lit(updated_at, dtype=pl.Datetime("us")),
    )
