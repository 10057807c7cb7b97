"""Quadrature grids on the theta scale, shared by calibration (EM) and scoring.

Nodes are equally spaced on ``[-THETA_RANGE, THETA_RANGE]`` (logits); with equal spacing the
trapezoid rule reduces to weights proportional to the integrand, so a grid is just its nodes
plus log prior weights.
"""

from __future__ import annotations

import numpy as np

#: Calibration grid (mirt's default): 61 equally spaced points on [-THETA_RANGE, THETA_RANGE].
DEFAULT_CALIBRATION_POINTS = 61
#: Base scoring grid: 121 points (spacing 0.1). Finer grids are chosen per user when needed.
DEFAULT_SCORING_POINTS = 121
#: Grids never exceed this many points (spacing 0.003 on [-6, 6]).
MAX_QUADRATURE_POINTS = 4001
THETA_RANGE = 6.0


def grid(points: int, theta_range: float = THETA_RANGE) -> np.ndarray:
    """Equally spaced quadrature nodes: float64 array (points,) on [-theta_range, theta_range]
    (logits). Raises ValueError for fewer than 3 points."""
    if points < 3:
        raise ValueError(f"quadrature_points must be at least 3, got {points}")
    return np.linspace(-theta_range, theta_range, int(points))


def log_normal_weights(nodes: np.ndarray, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
    """Log of N(mean, sd^2) weights on ``nodes`` (float64 (Q,), logits), normalized to sum
    to 1: float64 (Q,)."""
    logw = -0.5 * ((nodes - mean) / sd) ** 2
    return logw - np.logaddexp.reduce(logw)


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
