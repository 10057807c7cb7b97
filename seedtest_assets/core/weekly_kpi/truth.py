"""How well the KPIs match the synthetic generator's ground truth (tests, demo, docs).

Pure functions over the wide KPI frame (:data:`~seedtest_assets.core.weekly_kpi.compute.KPI_SCHEMA`,
one or more weeks) and the ``truth_users`` / ``truth_theta_weekly`` tables. Never used in
production, where there is no truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy.stats import mannwhitneyu

#: "Churn within the next 2 weeks" of a KPI computed as of the Monday after week W: the
#: student's observed churn week (first Monday with no more activity) is at most W + 21 days.
CHURN_HORIZON_DAYS = 21


@dataclass
class TruthReport:
    """Agreement with the truth; ``reliability`` has one row per decile of P."""

    weeks: list[date]
    churn_students: int
    churn_positives: int
    churn_auc: float
    goal_students: int
    goal_base_rate: float
    goal_brier: float
    goal_brier_base: float
    reliability: pl.DataFrame  # decile, n, mean_p, observed
    improvement_students: int
    improvement_corr: float
    naive_change_corr: float
    theta_corr: float

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        return [
            f"S churn risk: ROC AUC {self.churn_auc:.3f} for churn within 2 weeks "
            f"({self.churn_positives:,} churners of {self.churn_students:,} student-weeks)",
            f"P goal probability: Brier {self.goal_brier:.3f} vs base rate "
            f"{self.goal_brier_base:.3f} ({self.goal_students:,} student-weeks, "
            f"{self.goal_base_rate:.0%} reached; forecasts of goals still ahead)",
            f"I_t improvement: corr with true weekly change {self.improvement_corr:.3f} "
            f"(difference of weekly thetas: {self.naive_change_corr:.3f}); "
            f"theta corr with true ability {self.theta_corr:.3f}",
        ]


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (= Mann-Whitney U / (n1 n0)); ties count one half."""
    pos, neg = score[label], score[~label]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float(mannwhitneyu(pos, neg).statistic / (pos.size * neg.size))


def reliability_table(p: np.ndarray, outcome: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """Mean forecast and observed frequency per decile of the forecast (``bins`` groups of
    equal size, by rank)."""
    order = np.argsort(p, kind="stable")
    decile = np.empty(p.size, dtype=np.int64)
    decile[order] = np.arange(p.size) * bins // max(p.size, 1)
    return (
        pl.DataFrame({"decile": decile + 1, "p": p, "y": outcome.astype(np.float64)})
        .group_by("decile")
        .agg(n=pl.len(), mean_p=pl.col("p").mean(), observed=pl.col("y").mean())
        .sort("decile")
    )


def validate_against_truth(
    kpis: pl.DataFrame,
    truth_users: pl.DataFrame,
    truth_theta_weekly: pl.DataFrame,
    *,
    period_end: date,
) -> TruthReport:
    """Compare KPIs with the truth over the weeks in ``kpis``.

    - S: weeks whose 2-week churn horizon ends inside the period (W + 21 <= period_end).
    - P: every student-week whose goal date is still ahead (outcome: truth ``reached_goal``).
    - I_t: against theta(W) - theta(W-1) of ``truth_theta_weekly``.
    """
    k = kpis.join(truth_users, on="user_id", how="inner")
    horizon = pl.col("week_start") + timedelta(days=CHURN_HORIZON_DAYS)
    churn = k.filter(horizon <= period_end).with_columns(
        churned=pl.col("churn_week").is_not_null() & (pl.col("churn_week") <= horizon)
    )
    auc = roc_auc(churn["S"].to_numpy(), churn["churned"].to_numpy())

    # Forecasts only: goals still ahead at the time of the KPI (a passed goal date is a
    # nowcast). One row per student-week.
    goals = k.filter(pl.col("P").is_not_null() & (pl.col("weeks_to_goal") > 0))
    p = goals["P"].to_numpy()
    y = goals["reached_goal"].to_numpy().astype(np.float64)
    base = float(y.mean()) if y.size else float("nan")

    prev = truth_theta_weekly.select(
        "user_id",
        (pl.col("week_start") + timedelta(days=7)).alias("week_start"),
        theta_true_prev="theta",
    )
    change = (
        kpis.filter(pl.col("I_t").is_not_null())
        .join(truth_theta_weekly.rename({"theta": "theta_true"}), on=["user_id", "week_start"])
        .join(prev, on=["user_id", "week_start"])
        .with_columns(true_change=pl.col("theta_true") - pl.col("theta_true_prev"))
    )
    naive = change.filter(pl.col("theta_prev").is_not_null())
    return TruthReport(
        weeks=sorted(set(kpis["week_start"].to_list())),
        churn_students=churn.height,
        churn_positives=int(churn["churned"].sum()),
        churn_auc=auc,
        goal_students=goals.height,
        goal_base_rate=base,
        goal_brier=float(np.mean((p - y) ** 2)) if y.size else float("nan"),
        goal_brier_base=float(np.mean((base - y) ** 2)) if y.size else float("nan"),
        reliability=reliability_table(p, y),
        improvement_students=change.height,
        improvement_corr=_corr(change, "I_t", "true_change"),
        naive_change_corr=_corr(
            naive.with_columns(naive=pl.col("theta") - pl.col("theta_prev")), "naive", "true_change"
        ),
        theta_corr=_corr(change, "theta", "theta_true"),
    )


def _corr(frame: pl.DataFrame, a: str, b: str) -> float:
    if frame.height < 3:
        return float("nan")
    return float(frame.select(pl.corr(a, b)).item())
