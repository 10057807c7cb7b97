"""Small numeric helpers for the IRT tests."""

from __future__ import annotations

import numpy as np


def rmse(x, y) -> float:
    return float(np.sqrt(np.mean((np.asarray(x) - np.asarray(y)) ** 2)))


def corr(x, y) -> float:
    return float(np.corrcoef(np.asarray(x), np.asarray(y))[0, 1])
