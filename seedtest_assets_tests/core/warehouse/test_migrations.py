"""Migrations build exactly the schema the code declares, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.warehouse.schema import metadata


def test_migrated_schema_matches_metadata(warehouse_url):
    engine = make_engine(warehouse_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
        assert ctx.get_current_revision() is not None
    engine.dispose()
    assert diff == [], f"schema.py and migrations disagree: {diff}"


def test_upgrade_is_idempotent_and_creates_all_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = upgrade(url)
    second = upgrade(url)
    assert first == second != ""
    names = set(inspect(make_engine(url)).get_table_names())
    assert set(metadata.tables) <= names


def test_output_tables_are_keyed_by_partition_first():
    # Re-running a partition is DELETE WHERE <partition column> + INSERT: the key starts there.
    expected = {
        "features_topic_daily": "date",
        "attempt_rejects": "partition_date",
        "user_inactivity": "as_of_date",
        "weekly_kpi": "week_start",
        "mirt_item_params": "week_start",
        "report_artifacts": "week_start",
    }
    for table, column in expected.items():
        assert metadata.tables[table].primary_key.columns.values()[0].name == column
