"""Item and test information, and marginal reliability (no Dagster).

For ``P(theta) = c + (1 - c) expit(a theta + d)`` the Fisher information an item carries
about theta is ``P'(theta)^2 / (P (1 - P))`` (1 / logit^2), which for c = 0 is
``a^2 P (1 - P)``; the test information is the sum over items, and ``1 / sqrt(I(theta))`` is
the standard error of a maximum-likelihood theta there. Marginal reliability is R mirt's
``marginal_rxx``: the information-weighted share of the latent variance,
``E_g[ I(theta) / (I(theta) + 1 / sd^2) ]`` over the population g = N(mean, sd^2), i.e.
``1 - E[posterior variance] / sd^2`` with the normal approximation of the posterior.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import expit

from seedtest_assets.core.irt.data import parse_item_params
from seedtest_assets.core.irt.quadrature import grid, log_normal_weights


def item_information(items: pl.DataFrame, theta: np.ndarray | float) -> np.ndarray:
    """Information of every item of ``items`` (item_id, a, b or d, optional c) at ``theta``
    (logits): float64 (n_items, n_theta), rows sorted by item_id."""
    a, d, c, _ = parse_item_params(items)
    t = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    psi = expit(a[:, None] * t[None, :] + d[:, None])
    cc = c[:, None]
    p = cc + (1 - cc) * psi
    # P' = a (1 - c) psi (1 - psi) and 1 - P = (1 - c)(1 - psi), so the ratio simplifies to
    # a^2 (1 - c) psi^2 (1 - psi) / P: no division by a vanishing 1 - P.
    with np.errstate(divide="ignore", invalid="ignore"):
        info = np.where(p > 0, a[:, None] ** 2 * (1 - cc) * psi**2 * (1 - psi) / p, 0.0)
    return info


def test_information(items: pl.DataFrame, theta: np.ndarray | float) -> np.ndarray:
    """Sum of :func:`item_information` over the items: float64 (n_theta,)."""
    return item_information(items, theta).sum(axis=0)


def marginal_reliability(
    items: pl.DataFrame, mean: float = 0.0, sd: float = 1.0, quadrature_points: int = 121
) -> float:
    """mirt's ``marginal_rxx`` for the test ``items`` over the population N(mean, sd^2):
    ``E[I / (I + 1/sd^2)]``, a number in [0, 1)."""
    nodes = mean + sd * grid(quadrature_points)  # +-6 SD
    w = np.exp(log_normal_weights(nodes, mean, sd))
    info = test_information(items, nodes)
    return float(np.sum(w * info / (info + 1.0 / sd**2)))


# The psychometric name, not a pytest test (for modules that import it).
test_information.__test__ = False  # type: ignore[attr-defined]
