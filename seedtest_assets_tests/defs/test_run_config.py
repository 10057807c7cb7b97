"""Launchpad config is checked before anything is written: ranges, allowed values."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from sqlalchemy import func, select

from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.definitions import build_defs
from seedtest_assets.defs.mirt_ability.assets import mirt_ability
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.resources import ReportStoreResource, WarehouseResource

defs = build_defs()

WEEK = date(2026, 3, 2)


@pytest.fixture(scope="module")
def scored_url(tmp_path_factory) -> str:
    """One calibrated and scored week."""
    url = f"sqlite:///{tmp_path_factory.mktemp('config') / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    load(engine, generate(SyntheticConfig(n_users=120, weeks=1, seed=3, start=WEEK)))
    engine.dispose()
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [mirt_item_params, mirt_ability],
            resources={"warehouse": WarehouseResource(database_url=url)},
            instance=instance,
            partition_key=WEEK.isoformat(),
        ).success
    return url


def weekly_rows(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count())
            .select_from(s.mirt_ability)
            .where(s.mirt_ability.c.source == "weekly")
        ).scalar_one()
    engine.dispose()
    return n


@pytest.mark.parametrize("lookback", [0, -3, 53])
def test_a_lookback_out_of_range_fails_and_deletes_nothing(scored_url, lookback):
    # Before: lookback_weeks 0 "succeeded", deleted every weekly row and the check passed.
    before = weekly_rows(scored_url)
    assert before > 50
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [mirt_ability],
            resources={"warehouse": WarehouseResource(database_url=scored_url)},
            instance=instance,
            partition_key=WEEK.isoformat(),
            run_config={"ops": {"mirt_ability": {"config": {"lookback_weeks": lookback}}}},
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "lookback_weeks" in str(failure.event_specific_data.error)
    assert weekly_rows(scored_url) == before


@pytest.mark.parametrize(
    ("job", "op", "config", "field"),
    [
        # A re-score can never write the weekly batch's rows.
        (
            "student_rescore_job",
            "rescore_students",
            {"user_ids": [1], "source": "weekly"},
            "source",
        ),
        ("mirt_weekly_job", "mirt_item_params", {"linking": "meansigma"}, "linking"),
        ("mirt_weekly_job", "mirt_item_params", {"model": "4PL"}, "model"),
        ("report_artifacts_job", "report_artifacts", {"lang": "fr"}, "lang"),
    ],
)
def test_values_outside_the_allowed_set_are_refused_at_launch(job, op, config, field):
    with pytest.raises(dg.DagsterInvalidConfigError, match=field):
        defs.resolve_job_def(job).execute_in_process(
            run_config={"ops": {op: {"config": config}}},
            tags={} if job == "student_rescore_job" else {"dagster/partition": WEEK.isoformat()},
            resources={
                "warehouse": WarehouseResource(database_url="sqlite://"),
                "report_store": ReportStoreResource(),
            },
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"formats": ["docx"]}, "formats must be among"),
        ({"formats": []}, "formats"),
        ({"shard_count": 2, "shard_index": 2}, "shard_index must be below shard_count"),
        ({"max_users": 0}, "max_users"),
    ],
)
def test_report_config_is_checked_before_rendering(scored_url, tmp_path, config, message):
    from seedtest_assets.defs.report_artifacts.assets import report_artifacts

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [report_artifacts],
            resources={
                "warehouse": WarehouseResource(database_url=scored_url),
                "report_store": ReportStoreResource(local_dir=str(tmp_path)),
            },
            instance=instance,
            partition_key=WEEK.isoformat(),
            run_config={"ops": {"report_artifacts": {"config": config}}},
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert message in str(failure.event_specific_data.error)
    assert not (tmp_path / "reports").exists()
