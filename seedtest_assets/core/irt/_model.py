"""Item response functions, quadrature grids and item priors shared by calibration and scoring.

All functions are vectorized numpy; ``theta`` is ability in logits (the N(0, 1) population
scale), ``a`` the slope, ``d`` the intercept and ``c`` the lower asymptote (guessing,
probability scale). The item response function is the slope-intercept form used by R mirt::

    P(correct | theta) = c + (1 - c) / (1 + exp(-(a * theta + d)))      b = -d / a
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

#: Calibration grid (mirt's default): 61 equally spaced points on [-THETA_RANGE, THETA_RANGE].
DEFAULT_CALIBRATION_POINTS = 61
#: Base scoring grid: 121 points (spacing 0.1). Finer grids are chosen per user when needed.
DEFAULT_SCORING_POINTS = 121
#: Grids never exceed this many points (spacing 0.003 on [-6, 6]).
MAX_QUADRATURE_POINTS = 4001
THETA_RANGE = 6.0


@dataclass(frozen=True)
class ItemPriors:
    """Priors on item parameters; the EM M-step maximizes log-likelihood + log-prior (MAP).

    - ``slope``: (mean, sd) of a normal prior on ``a``, or None for none. Default N(1, 2^2): weak
      (an item with 100 responses carries ~10x more information about ``a``), but it keeps
      ``a`` finite for items that separate the sample perfectly.
    - ``intercept``: (mean, sd) of a normal prior on ``d``, or None. Default N(0, 5^2): bounds
      ``d`` (about |d| < 8 for 100 responses) for all-correct / all-wrong items, where the
      likelihood alone pushes ``d`` to +-inf.
    - ``guess``: (alpha, beta) of a Beta prior on ``c`` (3PL only), or None. Default Beta(5, 17)
      (mode 0.2, mean 0.23): without it guessing estimates wander (notes: c RMSE .18 -> .066).
      The mode is taken on the probability scale (MAP for ``c``, not for logit ``c``).

    Both normal priors are concave, so the 2PL M-step objective stays concave in (a, d).
    """

    slope: tuple[float, float] | None = (1.0, 2.0)
    intercept: tuple[float, float] | None = (0.0, 5.0)
    guess: tuple[float, float] | None = (5.0, 17.0)


def grid(points: int, theta_range: float = THETA_RANGE) -> np.ndarray:
    """Equally spaced quadrature nodes: float64 array (points,) on [-theta_range, theta_range]."""
    if points < 3:
        raise ValueError(f"quadrature_points must be at least 3, got {points}")
    return np.linspace(-theta_range, theta_range, int(points))


def log_normal_weights(nodes: np.ndarray, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
    """Log of N(mean, sd^2) weights on ``nodes``, normalized to sum to 1: float64 (Q,)."""
    logw = -0.5 * ((nodes - mean) / sd) ** 2
    return logw - np.logaddexp.reduce(logw)


def log_prob_tables(
    a: np.ndarray, d: np.ndarray, c: np.ndarray, nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log P and log(1 - P) for every item at every node: two float64 arrays (n_items, Q).

    Computed without forming P first so that extreme items (|z| > 40) keep finite logs.
    """
    z = a[:, None] * nodes[None, :] + d[:, None]
    log_psi = log_expit(z)  # log of the 2PL part
    log_1m_psi = log_expit(-z)
    if not np.any(c > 0):
        return log_psi, log_1m_psi
    cc = c[:, None]
    with np.errstate(divide="ignore"):
        log_c = np.log(cc)
        log_1m_c = np.log1p(-cc)
    log_p = np.logaddexp(log_c, log_1m_c + log_psi)
    log_q = log_1m_c + log_1m_psi
    return log_p, log_q


def prob(a: np.ndarray, d: np.ndarray, c: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """P(correct) elementwise (broadcasting) for slope ``a``, intercept ``d``, guessing ``c``."""
    return c + (1.0 - c) * expit(a * theta + d)


def max_information(a: np.ndarray) -> np.ndarray:
    """Upper bound of an item's Fisher information about theta: a^2 / 4 (the 2PL maximum; a
    lower asymptote c > 0 only lowers it). float64, same shape as ``a``."""
    return 0.25 * np.asarray(a, dtype=np.float64) ** 2


def points_for_information(
    info: float | np.ndarray, theta_range: float = THETA_RANGE
) -> np.ndarray:
    """Grid size needed to integrate a posterior whose information is at most ``info``.

    The posterior SD is at least ``1 / sqrt(1 + info)`` (prior information 1). Equally spaced
    (trapezoid) quadrature of a near-Gaussian integrand with spacing ``h`` has a relative error
    of about ``exp(-2 pi^2 sd^2 / h^2)``, so ``h <= sd`` keeps it below 1e-8 - with margin,
    because ``info`` is an upper bound. Returns int64 array (same shape as ``info``).
    """
    sd = 1.0 / np.sqrt(1.0 + np.asarray(info, dtype=np.float64))
    return np.minimum(np.ceil(2.0 * theta_range / sd).astype(np.int64) + 1, MAX_QUADRATURE_POINTS)
