"""Quadrature grids: nodes, normalized prior weights, the grid size for a given information."""

from __future__ import annotations

import numpy as np
import pytest

from seedtest_assets.core.irt.quadrature import (
    MAX_QUADRATURE_POINTS,
    grid,
    log_normal_weights,
    points_for_information,
)


def test_grid_is_equally_spaced_on_the_range():
    nodes = grid(61)
    assert nodes[0] == -6.0 and nodes[-1] == 6.0
    np.testing.assert_allclose(np.diff(nodes), 0.2, rtol=1e-12)
    with pytest.raises(ValueError, match="at least 3"):
        grid(2)


def test_log_normal_weights_are_normalized_and_centred():
    nodes = grid(121)
    w = np.exp(log_normal_weights(nodes, 0.5, 1.2))
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    # the grid ends 4.6 SDs above the mean: the cut tail shifts the moments by ~1e-5
    assert w @ nodes == pytest.approx(0.5, abs=1e-4)
    assert np.sqrt(w @ (nodes - 0.5) ** 2) == pytest.approx(1.2, abs=1e-4)


def test_points_for_information():
    # info 99 -> posterior SD >= 0.1 -> spacing 0.1 on [-6, 6] -> 121 points
    assert int(points_for_information(99.0)) == 121
    assert int(points_for_information(0.0)) == 13
    assert int(points_for_information(1e9)) == MAX_QUADRATURE_POINTS
