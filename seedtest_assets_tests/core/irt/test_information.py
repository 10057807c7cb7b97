"""Item and test information, marginal reliability: against their definitions, computed
by hand and by numerical differentiation and integration."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import integrate
from scipy.special import expit

from seedtest_assets.core.irt.information import (
    item_information,
    marginal_reliability,
    test_information,
)

ITEMS = pl.DataFrame(
    {"item_id": [1, 2, 3], "a": [1.2, 0.7, 2.0], "d": [0.5, -1.0, 1.5], "c": [0.0, 0.0, 0.2]}
)


def _p(a: float, d: float, c: float, t: np.ndarray) -> np.ndarray:
    return c + (1 - c) * expit(a * t + d)


def test_item_information_is_the_fisher_information() -> None:
    theta = np.linspace(-4, 4, 41)
    info = item_information(ITEMS, theta)
    h = 1e-5
    for j, (a, d, c) in enumerate(ITEMS.select("a", "d", "c").iter_rows()):
        p = _p(a, d, c, theta)
        dp = (_p(a, d, c, theta + h) - _p(a, d, c, theta - h)) / (2 * h)
        np.testing.assert_allclose(info[j], dp**2 / (p * (1 - p)), rtol=1e-6)
    # 2PL by hand: a^2 P (1 - P); at theta = -d/a it is a^2 / 4.
    assert item_information(ITEMS[0], -0.5 / 1.2)[0, 0] == pytest.approx(1.2**2 / 4)
    np.testing.assert_allclose(test_information(ITEMS, theta), info.sum(axis=0))


def test_extreme_items_stay_finite() -> None:
    items = pl.DataFrame({"item_id": [1, 2], "a": [3.0, 3.0], "d": [60.0, -60.0], "c": [0.0, 0.25]})
    info = item_information(items, np.array([-6.0, 0.0, 6.0]))
    assert np.all(np.isfinite(info)) and np.all(info >= 0) and np.all(info < 1e-10)


@pytest.mark.parametrize(("mean", "sd"), [(0.0, 1.0), (0.5, 1.3)])
def test_marginal_reliability_integrates_its_definition(mean: float, sd: float) -> None:
    def integrand(t: float) -> float:
        info = float(test_information(ITEMS, t)[0])
        dens = np.exp(-0.5 * ((t - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
        return dens * info / (info + 1 / sd**2)

    expected, _ = integrate.quad(integrand, mean - 10 * sd, mean + 10 * sd)
    assert marginal_reliability(ITEMS, mean, sd) == pytest.approx(expected, abs=1e-4)
    # More items, more reliable; a test of no information has none.
    assert marginal_reliability(pl.concat([ITEMS, ITEMS.with_columns(pl.col("item_id") + 10)])) > (
        marginal_reliability(ITEMS)
    )
    flat = ITEMS.with_columns(a=pl.lit(0.0))
    assert marginal_reliability(flat) == pytest.approx(0.0, abs=1e-12)
