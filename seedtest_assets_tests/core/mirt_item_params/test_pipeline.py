"""The weekly calibration's warm start and acceleration (issue 18): faster, same estimates.

A generated population of 1,500 students x 3 weeks (SQLite), the last week calibrated on its
3-week window after the previous weeks were stored. The default (SQUAREM, warm start from last
week's stored parameters) is compared with the original job (plain EM, cold start) and with a
tightly converged reference (SQUAREM, tol 1e-7): same stored parameters and log-likelihood,
far fewer E-steps (measured at the job's tol 3e-5: 17 E-steps against 67; max |Δ| a, d from
the reference 8.9e-6 against 2.3e-4; ΔLL 5e-5).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from seedtest_assets.core.attempts.read import read_checked_attempts
from seedtest_assets.core.irt import calibrate
from seedtest_assets.core.mirt_item_params.pipeline import (
    CalibrationRun,
    calibrate_week,
    stored_item_params,
)
from seedtest_assets.core.mirt_item_params.share import cap_student_responses
from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, upgrade

START = date(2026, 3, 2)
WEEKS = 3
LAST = START + timedelta(weeks=WEEKS - 1)
NOW = datetime.combine(START + timedelta(weeks=WEEKS), datetime.min.time())


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('warm') / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    pop = generate(SyntheticConfig(n_users=1_500, weeks=WEEKS, seed=11, start=START))
    load(engine, pop, replace=True)
    for k in range(WEEKS - 1):  # the weeks before, as the schedule stored them
        calibrate_week(engine, START + timedelta(weeks=k), now=NOW, window_weeks=WEEKS)
    return engine


def last_week(engine, **kw) -> tuple[CalibrationRun, pl.DataFrame]:
    run = calibrate_week(engine, LAST, now=NOW, window_weeks=WEEKS, **kw)
    assert run is not None
    return run, stored_item_params(engine, LAST, "2PL").sort("item_id")


def test_warm_squarem_matches_a_cold_plain_run_in_a_third_of_the_e_steps(engine) -> None:
    cold, cold_rows = last_week(engine, accelerate="none", warm_start=False)
    warm, warm_rows = last_week(engine)  # the defaults: squarem + warm start
    previous = stored_item_params(engine, LAST - timedelta(days=7), "2PL")
    assert warm.accelerate == "squarem" and cold.accelerate == "none"
    assert cold.warm_items == 0
    assert warm.warm_items == previous.filter(~pl.col("flagged")).height > 100
    assert warm.calibration.converged and cold.calibration.converged
    assert warm.calibration.iterations * 3 <= cold.calibration.iterations, (
        warm.calibration.iterations,
        cold.calibration.iterations,
    )
    # The re-run replaced the week's rows (one per item), and the same items are flagged.
    assert warm_rows.height == cold_rows.height == warm.items
    assert warm_rows["flagged"].to_list() == cold_rows["flagged"].to_list()
    assert abs(warm.calibration.log_likelihood - cold.calibration.log_likelihood) < 0.05

    # Both near a tightly converged fit of the same responses, on the fit's own scale (the
    # stored rows are linked, and the link moves with the estimate's own noise).
    ref = tight_reference(engine)
    warm_gap, cold_gap = (max(gap(run, ref, c) for c in ("a", "d")) for run in (warm, cold))
    assert warm_gap < 1e-3 and cold_gap < 1e-2, (warm_gap, cold_gap)
    # SQUAREM stops nearer the solution than plain EM, whose small steps end it early.
    assert warm_gap <= cold_gap, (warm_gap, cold_gap)


def gap(run: CalibrationRun, ref: pl.DataFrame, col: str) -> float:
    """Largest |difference| of ``col`` between the run's unflagged items and ``ref``."""
    mine = run.calibration.items.filter(~pl.col("flagged")).select("item_id", col)
    both = mine.join(ref.select("item_id", pl.col(col).alias("ref")), on="item_id")
    assert both.height == mine.height
    return float((both[col] - both["ref"]).abs().max())


def tight_reference(engine) -> pl.DataFrame:
    """The last week's window, read and capped as the pipeline does, fitted to tol 1e-7 (the
    solution both runs approximate)."""
    end = LAST + timedelta(days=7)
    checked = read_checked_attempts(engine, end - timedelta(weeks=WEEKS), end, now=NOW)
    capped, _ = cap_student_responses(checked.valid)
    responses = capped.select("user_id", "item_id", "is_correct")
    fit = calibrate(responses, accelerate="squarem", tol=1e-7, max_cycles=2_000)
    assert fit.converged
    return fit.items.sort("item_id")


def test_a_week_without_stored_parameters_last_week_starts_cold(engine) -> None:
    run = calibrate_week(engine, START, now=NOW, window_weeks=WEEKS)
    assert run is not None and run.warm_items == 0 and run.calibration.converged
