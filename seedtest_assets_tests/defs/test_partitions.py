"""The partition definitions follow docs/adr/0001-partitions.md."""

from datetime import date

import dagster as dg

from seedtest_assets.definitions import build_defs
from seedtest_assets.defs import partitions

defs = build_defs()


def test_weeks_start_on_monday_and_map_to_their_seven_days():
    keys = partitions.weekly.get_partition_keys_in_range(
        dg.PartitionKeyRange("2026-11-02", "2026-11-09")
    )
    assert keys == ["2026-11-02", "2026-11-09"]
    assert all(date.fromisoformat(k).weekday() == 0 for k in keys)
    days = (
        dg.TimeWindowPartitionMapping()
        .get_upstream_mapped_partitions_result_for_partitions(
            partitions.weekly.empty_subset().with_partition_keys(["2026-11-09"]),
            partitions.weekly,
            partitions.daily,
        )
        .partitions_subset.get_partition_keys()
    )
    assert sorted(days) == [f"2026-11-{d:02d}" for d in range(9, 16)]


def test_users_are_dynamic_and_keys_are_decimal_ids():
    assert isinstance(partitions.users, dg.DynamicPartitionsDefinition)
    assert partitions.users.name == "users"
    assert partitions.user_partition_key(42) == "42"


def test_daily_assets_backfill_a_range_in_one_run():
    graph = defs.resolve_asset_graph()
    for key in ("features_topic_daily", "user_inactivity"):
        node = graph.get(dg.AssetKey(key))
        assert node.partitions_def == partitions.daily
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_the_first_partition_follows_the_configured_or_recorded_data_start(tmp_path, monkeypatch):
    import pytest

    from seedtest_assets.core import settings

    monkeypatch.setenv("SEEDTEST_HOME", str(tmp_path))
    monkeypatch.delenv("SEEDTEST_PARTITIONS_START")
    assert settings.partitions_start() == settings.DEFAULT_PARTITIONS_START
    # What `seedtest demo` records: the UI and CLI of this SEEDTEST_HOME follow the data.
    (tmp_path / settings.PARTITIONS_START_FILE).write_text("2026-10-05\n")
    assert settings.partitions_start() == date(2026, 10, 5)
    # The environment wins; a mid-week day starts its week (no partial first week).
    monkeypatch.setenv("SEEDTEST_PARTITIONS_START", "2026-10-08")
    assert settings.partitions_start() == date(2026, 10, 5)
    monkeypatch.setenv("SEEDTEST_PARTITIONS_START", "last tuesday")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        settings.partitions_start()
