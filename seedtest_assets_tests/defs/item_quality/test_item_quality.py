"""``item_quality`` through Dagster on both backends: one row per calibrated item with its
SEs, fit and information; the checks report; a re-run replaces; and anchors that drifted
(planted by moving last week's stored b) are left out of the next week's link and flagged."""

import json
from datetime import date, timedelta

import dagster as dg
import pytest
from sqlalchemy import func, select, update

from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, transaction, upgrade
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.item_quality.assets import item_quality
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.resources import ReportStoreResource, WarehouseResource

START = date(2026, 3, 2)  # a Monday
WEEK1, WEEK2 = START + timedelta(weeks=1), START + timedelta(weeks=2)


@pytest.fixture
def bank_url(warehouse_url) -> str:
    upgrade(warehouse_url)
    engine = make_engine(warehouse_url)
    load(engine, generate(SyntheticConfig(n_users=1500, weeks=3, seed=11, start=START)))
    engine.dispose()
    return warehouse_url


def _run(url: str, week: date, instance, store, assets=(mirt_item_params, item_quality)):
    return dg.materialize(
        list(assets),
        resources={
            "warehouse": WarehouseResource(database_url=url),
            "report_store": ReportStoreResource(local_dir=str(store)),
        },
        instance=instance,
        partition_key=week.isoformat(),
    )


def _rows(url: str, table, week: date) -> list[dict]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [
            dict(r._mapping) for r in conn.execute(select(table).where(table.c.week_start == week))
        ]
    engine.dispose()
    return rows


def _meta(result, key: str) -> dict:
    return {
        k: v.value
        for m in result.get_asset_materialization_events()
        if m.asset_key.to_user_string() == key
        for k, v in m.event_specific_data.materialization.metadata.items()
    }


def test_one_row_per_calibrated_item_with_ses_fit_and_information(bank_url, tmp_path):
    with dg.instance_for_test() as instance:
        _run(bank_url, WEEK1, instance, tmp_path)
        result = _run(bank_url, WEEK2, instance, tmp_path)
        again = _run(bank_url, WEEK2, instance, tmp_path)  # a re-run replaces
    params = _rows(bank_url, s.mirt_item_params, WEEK2)
    quality = _rows(bank_url, s.item_quality, WEEK2)
    assert len(quality) == len(params) > 50
    by_id = {
        r["item_id"]: json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]
        for r in params
    }
    unflagged = [q for q in quality if not q["flagged"]]
    assert unflagged
    for q in unflagged:
        p = by_id[q["item_id"]]
        # The stored SEs are the table's, on the same (linked) scale, positive and finite.
        assert q["b_se"] == pytest.approx(p["b_se"]) and 0 < q["b_se"] < float("inf")
        assert q["a"] == pytest.approx(p["a"]) and q["information"] > 0
        assert q["version"] == f"2PL@{WEEK2}"
    tested = [q for q in unflagged if q["fit_p"] is not None]
    assert len(tested) >= 0.9 * len(unflagged)
    # Synthetic 2PL data: few items misfit at 1% (chance gives about 1 in 100).
    assert sum(q["misfit"] for q in tested) <= max(3, 0.05 * len(tested))
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) >= {"misfit_within_chance", "anchors_stable", "no_dif_across_organisations"}
    meta = _meta(again, "item_quality")
    assert meta["items"] == len(quality) and meta["window_weeks"] == 12
    assert "worst_misfit" in meta


def test_drifted_anchors_are_left_out_of_the_link_and_flagged(bank_url, tmp_path):
    with dg.instance_for_test() as instance:
        _run(bank_url, WEEK1, instance, tmp_path, assets=(mirt_item_params,))
        # Plant drift: three well-measured items of week 1 were 1.5 logits easier "then".
        engine = make_engine(bank_url)
        week1 = sorted(
            (r for r in _rows(bank_url, s.mirt_item_params, WEEK1)),
            key=lambda r: (
                -(json.loads(r["params"]) if isinstance(r["params"], str) else r["params"])[
                    "n_responses"
                ]
            ),
        )
        moved = []
        with transaction(engine) as conn:
            for r in week1[:3]:
                p = json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]
                p["b"] -= 1.5
                p["d"] = -p["a"] * p["b"]
                conn.execute(
                    update(s.mirt_item_params)
                    .where(
                        s.mirt_item_params.c.week_start == WEEK1,
                        s.mirt_item_params.c.item_id == r["item_id"],
                    )
                    .values(params=p)
                )
                moved.append(r["item_id"])
        engine.dispose()
        result = _run(bank_url, WEEK2, instance, tmp_path)
    cal = _meta(result, "mirt_item_params")
    assert cal["link_dropped_anchors"] == 3
    assert sorted(cal["link_dropped_sample"]) == sorted(moved)
    # The link from the clean anchors is close to the identity (the same population).
    assert abs(cal["link_B"]) < 0.2 and abs(cal["link_A"] - 1) < 0.2
    quality = {q["item_id"]: q for q in _rows(bank_url, s.item_quality, WEEK2)}
    assert sorted(i for i, q in quality.items() if q["drifted"]) == sorted(moved)
    for i in moved:
        assert quality[i]["drift_z_b"] > 4 and "drift" in quality[i]["problems"]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["anchors_stable"].passed
    assert checks["anchors_stable"].severity == dg.AssetCheckSeverity.WARN
    assert checks["anchors_stable"].metadata["drifted"].value == 3
    # The item-bank page a content author opens: the three drifted items, each with its two
    # curves (this week and last week), under "Drifted items".
    meta = _meta(result, "item_quality")
    page = tmp_path / "reports" / "item_bank" / WEEK2.isoformat() / "2PL.html"
    assert meta["item_bank_page"] == page.as_uri()
    html = page.read_text("utf-8")
    drifted = html.split('id="drift"')[1].split('id="dif"')[0]
    for i in moved:
        assert f"<strong>{i}</strong>" in drifted
    assert drifted.count("<svg") == 3 and drifted.count("<polyline") == 6
    assert "last week" in drifted and "b moved" in drifted
    assert "No DIF test this week" in html  # 1,500 students in 20 organisations


def test_a_store_that_fails_leaves_the_rows_and_says_so(bank_url, tmp_path):
    """The page cannot be stored (the store's folder is a file): the asset still succeeds,
    its rows are written, and the metadata says the page was not stored."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    with dg.instance_for_test() as instance:
        result = _run(bank_url, WEEK1, instance, blocked)
    assert result.success
    assert _meta(result, "item_quality")["item_bank_page"].startswith("not stored: ")
    assert len(_rows(bank_url, s.item_quality, WEEK1)) > 50


def test_a_week_without_a_calibration_is_an_empty_success(bank_url, tmp_path):
    with dg.instance_for_test() as instance:
        result = _run(
            bank_url, START - timedelta(weeks=30), instance, tmp_path, assets=(item_quality,)
        )
    assert result.success
    assert "nothing to judge" in _meta(result, "item_quality")["note"]
    engine = make_engine(bank_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.item_quality)).scalar_one() == 0
    engine.dispose()
