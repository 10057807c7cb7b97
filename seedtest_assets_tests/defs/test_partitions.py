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


def test_integer_ids_keep_their_decimal_keys():
    import numpy as np

    for uid in (0, 7, 42, 123, 10**12, np.int64(9)):
        assert partitions.user_partition_key(uid) == str(int(uid))
        assert partitions.is_valid_user_partition_key(uid)


#: Ids as the product has them (JWT ``sub``): the key is the id itself.
PRODUCT_IDS = [
    "test-user-123",
    "u-000123",
    "0b7e4a5c-3f1d-4e8a-9c2b-6d5f4a3b2c1d",
    "auth0|5f7c8ec7c33c6c004bbafe82",
    "google-oauth2|104870000000000000000",
    "user@example.com",
    "김민서",
    "a.b",
    "with space",
    "x" * partitions.MAX_USER_KEY_CHARS,
]


def test_product_ids_are_their_own_keys():
    for uid in PRODUCT_IDS:
        assert partitions.user_partition_key(uid) == uid
        assert partitions.is_valid_user_partition_key(uid)
        dg.StaticPartitionsDefinition([uid])  # Dagster's own check accepts it too


def test_ids_dagster_cannot_take_are_refused_with_the_id_and_the_rule():
    import re

    import pytest

    cases = {
        "": "empty",
        "a...b": r"\.\.\.",
        "new\nline": "control",
        "tab\there": "control",
        "nul\x00": "control",
        "bell\a": "control",
        "esc\x1b[0m": "control character",  # not in Dagster's list, invisible all the same
        "del\x7f": "control character",
        "c1\x85": "control character",
        "lone\ud800": "surrogate",
        "x" * (partitions.MAX_USER_KEY_CHARS + 1): "more than 255",
    }
    for uid, why in cases.items():
        assert not partitions.is_valid_user_partition_key(uid)
        with pytest.raises(ValueError, match=why) as err:
            partitions.user_partition_key(uid)
        msg = str(err.value)
        assert "cannot be a 'users' partition key" in msg
        assert repr(uid)[:40] in msg and len(msg) < 400  # the id, truncated
    with pytest.raises(ValueError) as err:
        partitions.user_partition_key("y" * 1000)
    assert "'yyyy" in str(err.value) and "y" * 100 not in str(err.value)
    with pytest.raises(TypeError):
        partitions.user_partition_key(1.5)  # type: ignore[arg-type]
    # Our forbidden substrings are at least Dagster's (it enforces them on static keys).
    from dagster._core.definitions.partitions.utils.base import INVALID_PARTITION_SUBSTRINGS

    assert set(INVALID_PARTITION_SUBSTRINGS) <= set(partitions.FORBIDDEN_KEY_SUBSTRINGS)
    for bad in INVALID_PARTITION_SUBSTRINGS:
        with pytest.raises(dg.DagsterInvalidDefinitionError, match=re.escape(repr(bad))):
            dg.StaticPartitionsDefinition([f"a{bad}b"])


def test_text_keys_round_trip_through_a_real_instance():
    keys = [partitions.user_partition_key(u) for u in [*PRODUCT_IDS, 42]]
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(partitions.users.name, keys)
        instance.add_dynamic_partitions(partitions.users.name, keys[:2])  # idempotent
        assert instance.get_dynamic_partitions(partitions.users.name) == keys
        for key in keys:
            assert instance.has_dynamic_partition(partitions.users.name, key)
        assert partitions.users.get_partition_keys(dynamic_partitions_store=instance) == keys


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


def test_accepted_beta_lets_through_only_the_named_feature():
    import warnings

    import dagster as dg
    import pytest

    from seedtest_assets.defs.partitions import ACCEPTED_BETA, accepted_beta

    with pytest.raises(KeyError, match="not an accepted Beta feature"), accepted_beta("x"):
        pass
    assert "backfill_policy" in ACCEPTED_BETA
    with accepted_beta("backfill_policy"):
        warnings.warn(
            "Parameter `backfill_policy` of function `asset` is beta", dg.BetaWarning, stacklevel=1
        )
        with pytest.raises(dg.BetaWarning):  # any other Beta use stays an error in tests
            warnings.warn(
                "Parameter `other` of function `asset` is beta", dg.BetaWarning, stacklevel=1
            )
