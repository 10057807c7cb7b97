"""The scoring basis a long-lived caller keeps (the θ-update service): same answers as
loading it per call, and a stamp that changes exactly when a new calibration lands."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from seedtest_assets.core.mirt_ability.online import update_theta
from seedtest_assets.core.mirt_ability.pipeline import basis_stamp, scoring_basis
from seedtest_assets.core.warehouse import make_engine, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.online_factories import (
    ITEM_PARAMS,
    monday_before,
    seed_scoring,
    store_item_params,
)


def test_a_kept_basis_scores_exactly_as_a_fresh_load(warehouse_url, clock):
    version = seed_scoring(warehouse_url, clock.now)
    engine = make_engine(warehouse_url)
    try:
        basis = scoring_basis(engine, "2PL", clock.now.date())
        assert basis is not None and basis.version == version
        assert basis.n_items == len(ITEM_PARAMS)
        kept = update_theta(engine, ["1", "3"], now=clock.now, source="api", basis=basis)
        fresh = update_theta(engine, ["1", "3"], now=clock.now, source="online")
    finally:
        engine.dispose()
    assert [r.status for r in kept.results] == ["ok", "noop"]
    assert kept.results[0].theta == fresh.results[0].theta
    assert kept.results[0].se == fresh.results[0].se


def test_the_stamp_follows_new_and_rerun_calibrations(sqlite_url, clock):
    seed_scoring(sqlite_url, clock.now)
    engine = make_engine(sqlite_url)
    try:
        first = basis_stamp(engine, "2PL", clock.now.date())
        assert first == basis_stamp(engine, "2PL", clock.now.date())  # nothing changed
        assert basis_stamp(engine, "3PL", clock.now.date()) is None  # never calibrated
        # A re-run of the same week rewrites its rows later: a new stamp.
        week = monday_before(clock.now.date())
        with transaction(engine) as conn:
            conn.execute(
                update(s.mirt_item_params)
                .where(s.mirt_item_params.c.week_start == week)
                .values(fitted_at=clock.now, params={"a": 2.0, "d": 0.0, "c": 0.0})
            )
        rerun = basis_stamp(engine, "2PL", clock.now.date())
        assert rerun != first
        basis = scoring_basis(engine, "2PL", clock.now.date())
        assert basis is not None and float(basis.bank.a[0]) == 2.0
        # A newer week: a new stamp and the newer version.
        newer = store_item_params(sqlite_url, week + timedelta(days=7))
        assert basis_stamp(engine, "2PL", clock.now.date()) not in (first, rerun)
        basis = scoring_basis(engine, "2PL", clock.now.date())
        assert basis is not None and basis.version == newer
    finally:
        engine.dispose()
