"""The read-back checks of report_artifacts: they read the stored reports as a person does."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from sqlalchemy import func, select

from seedtest_assets.core.report_artifacts import pipeline
from seedtest_assets.core.report_artifacts.store import StoreSettings
from seedtest_assets.core.report_artifacts.verify import report_text, sample_ids, verify_reports
from seedtest_assets.core.warehouse import make_engine
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.defs.report_artifacts.assets import report_artifacts
from seedtest_assets.defs.report_artifacts.checks import report_check_results
from seedtest_assets.defs.resources import ReportStoreResource, WarehouseResource
from seedtest_assets_tests.report_helpers import WEEK, HungEndpoint, seed_week


@pytest.fixture
def url(sqlite_url) -> str:
    seed_week(sqlite_url, n_users=6)  # KPI rows for students 1-4, θ rows for everyone
    return sqlite_url


def materialize(url, home, **config):
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [report_artifacts],
            resources={
                "warehouse": WarehouseResource(database_url=url),
                "report_store": ReportStoreResource(local_dir=str(home)),
            },
            instance=instance,
            partition_key=WEEK.isoformat(),
            run_config={"ops": {"report_artifacts": {"config": config}}} if config else None,
            raise_on_error=False,
        )


def checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


@pytest.mark.parametrize("formats", [["html", "pdf"], ["pdf"]])
def test_reports_show_every_kpi_and_the_weeks_theta(url, tmp_path, formats):
    result = materialize(url, tmp_path / "home", formats=formats)
    assert result.success
    got = checks(result)
    assert got["kpis_shown"].passed and got["theta_shown"].passed
    meta = got["kpis_shown"].metadata
    # 6 students reported (5 active in org 1 + student 100), 4 of them with a KPI row.
    assert meta["reports_read"].value == 6 and meta["compared"].value == 4
    assert got["theta_shown"].metadata["compared"].value == 6


def test_a_report_that_lost_its_kpis_fails_the_check(url, tmp_path, monkeypatch):
    # What the embedded default once did: the reader got a JSON string, not the object, and
    # every report said "not computed" although the KPI rows had the values.
    monkeypatch.setattr(pipeline, "_read_kpis", lambda *a, **k: {})
    result = materialize(url, tmp_path / "home", formats=["html"])
    got = checks(result)
    assert not got["kpis_shown"].passed and got["theta_shown"].passed
    meta = got["kpis_shown"].metadata
    assert meta["problems"].value >= 4 * 4  # four KPIs of each of 4 students
    examples = meta["examples"].value
    assert {e["user_id"] for e in examples} == {"1", "2", "3", "4"}
    assert any("not computed" in e["problem"] for e in examples)


def test_a_report_showing_another_theta_fails_the_check(url, tmp_path, monkeypatch):
    real = pipeline._read_history

    def shifted(*args, **kwargs):  # a report path that reads some other θ than the row's
        return real(*args, **kwargs).with_columns(theta=real(*args, **kwargs)["theta"] + 0.5)

    monkeypatch.setattr(pipeline, "_read_history", shifted)
    got = checks(materialize(url, tmp_path / "home", formats=["pdf"]))
    assert not got["theta_shown"].passed
    assert got["theta_shown"].metadata["problems"].value == 6


def test_a_dry_run_checks_its_reports_and_stores_nothing(url, tmp_path):
    home = tmp_path / "home"
    result = materialize(url, home, dry_run=True)
    assert result.success
    assert result.asset_materializations_for_node("report_artifacts") == []
    got = checks(result)
    assert got["kpis_shown"].passed and got["kpis_shown"].metadata["reports_read"].value == 6
    assert not home.exists()
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.report_artifacts)).scalar() == 0
    engine.dispose()


@pytest.mark.slow
def test_reading_back_from_a_hung_store_is_bounded_and_fails_the_checks(url, aws_env):
    """The store went silent after the batch: 3 reads time out (each within its deadline),
    the store is judged down, the other reports are not read, and both checks fail saying so."""
    with HungEndpoint() as hung:
        store = StoreSettings(
            bucket="reports",
            endpoint_url=hung.url,
            connect_timeout=1.0,
            read_timeout=1.0,
            file_deadline=6.0,
            breaker_failures=3,
        )
        t0 = time.perf_counter()
        v = verify_reports(make_engine(url), WEEK, ["1", "100", "2", "3", "4", "5"], store, "ko")
        elapsed = time.perf_counter() - t0
    print(f"\nread-back from a hung store: {elapsed:.1f} s")
    assert elapsed < 3 * 6.0 + 5, elapsed  # at most 3 file deadlines (measured ~9 s)
    assert v.checked == 0 and [u for u, _ in v.read_problems] == ["1", "100", "2"]
    assert all("Read timeout" in p for _, p in v.read_problems)
    assert v.not_read == 3
    assert v.store_down.startswith("store judged down after 3 consecutive timeouts")
    for check in report_check_results(v):
        assert not check.passed and check.description == v.store_down
        assert check.metadata["reports_not_read"].value == 3
        assert check.metadata["read_errors"].value == 3


def test_report_text_and_sampling():
    page = report_text(
        '<html><style>h3{}</style><body><h3 id="theta-value">θ 0.52 ± 0.21</h3>'
        '<h2 id="kpis">핵심 지표</h2><ul><li><strong>목표</strong>: 가능성 72%</li>'
        '<li>b &amp; c</li></ul><h2 id="study">x</h2><ul><li>not a KPI</li></ul></body>'
    )
    assert page.theta_headline == "θ 0.52 ± 0.21"
    assert page.kpi_lines == ("목표: 가능성 72%", "b & c")
    assert sample_ids([5, 3, 3, 1]) == [1, 3, 5]
    spread = sample_ids(range(1000), limit=10)
    assert spread == list(range(0, 1000, 100))
