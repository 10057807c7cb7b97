"""Shared simulated data sets (module-scoped in the tests that use them, built once here)."""

from __future__ import annotations

import polars as pl
import pytest

from seedtest_assets.core.irt import Calibration, calibrate, simulate


@pytest.fixture(scope="session")
def sim_2pl() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """5,000 users x 200 items x 40 responses each (200k responses), 2PL truth."""
    return simulate(5_000, 200, 40, model="2PL", seed=11)


@pytest.fixture(scope="session")
def cal_2pl(sim_2pl) -> Calibration:
    return calibrate(sim_2pl[0], model="2PL")
