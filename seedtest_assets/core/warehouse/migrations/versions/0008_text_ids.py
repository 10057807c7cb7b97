"""Text identifiers: the product's ids (students, organisations, sessions, items, topics) are text

The product's ids are strings (``"test-user-123"``, ``org_id 'org123'``, a JWT ``sub``); this
revision turns every id column of the warehouse (source, output and truth tables) from an
integer into ``TEXT``. ``attempts.id`` / ``attempt_rejects.attempt_id`` (the feed's row id)
stay integers.

Upgrade, on a populated warehouse, changes no row: each integer becomes its decimal text
(``123`` -> ``'123'``), so every row keeps its identity and every join still matches. On
PostgreSQL each table is rewritten once (one ``ALTER TABLE`` with ``USING col::text`` for all
its columns); the foreign key ``items.topic_id -> topics.topic_id`` and the view
``mirt_ability_latest`` are dropped and re-created around the change, since PostgreSQL does
not alter a column a view or a foreign key reads. On SQLite each table is rebuilt (batch
mode) with its values cast to text: a column of INTEGER affinity would otherwise turn the
text ``'007'`` into the number 7.

Downgrade turns the columns back into integers, and refuses, changing nothing, while any of
them holds a value that is not an integer's text (such a row would be lost or changed):
``--allow-data-loss`` does not override this, since no integer can hold ``'u-000123'``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from seedtest_assets.core.warehouse.migrate import MigrationRefused

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> (column, integer type it had before this revision), in dependency order.
ID_COLUMNS: dict[str, tuple[tuple[str, type[sa.types.TypeEngine]], ...]] = {
    "organizations": (("org_id", sa.Integer),),
    "users": (("user_id", sa.BigInteger), ("org_id", sa.Integer)),
    "topics": (("topic_id", sa.Integer),),
    "items": (("item_id", sa.Integer), ("topic_id", sa.Integer)),
    "exam_sessions": (("session_id", sa.BigInteger), ("user_id", sa.BigInteger)),
    "attempts": (
        ("user_id", sa.BigInteger),
        ("session_id", sa.BigInteger),
        ("item_id", sa.Integer),
        ("topic_id", sa.Integer),
    ),
    "features_topic_daily": (("user_id", sa.BigInteger), ("topic_id", sa.Integer)),
    "user_inactivity": (("user_id", sa.BigInteger),),
    "weekly_kpi": (("user_id", sa.BigInteger),),
    "mirt_item_params": (("item_id", sa.Integer),),
    "mirt_ability": (("user_id", sa.BigInteger),),
    "topic_ability": (("user_id", sa.BigInteger), ("topic_id", sa.Integer)),
    "report_artifacts": (("user_id", sa.BigInteger),),
    "truth_items": (("item_id", sa.Integer), ("topic_id", sa.Integer)),
    "truth_users": (("user_id", sa.BigInteger),),
    "truth_theta_weekly": (("user_id", sa.BigInteger),),
}

FK = "fk_items_topic_id_topics"

# As revision 0005 left it.
VIEW = """
CREATE VIEW mirt_ability_latest AS
SELECT user_id, week_start, theta, se, model, version, source, n_responses, fitted_at
FROM (
    SELECT m.*, ROW_NUMBER() OVER (
        PARTITION BY user_id ORDER BY fitted_at DESC, ability_id DESC
    ) AS rn
    FROM mirt_ability m
) ranked
WHERE rn = 1
"""


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _alter(to_text: bool) -> None:
    op.execute("DROP VIEW mirt_ability_latest")
    if _postgresql():
        op.drop_constraint(FK, "items", type_="foreignkey")
        # Names are this module's constants, never user input.
        for table, columns in ID_COLUMNS.items():
            parts = [
                f"ALTER COLUMN {c} TYPE text USING {c}::text"
                if to_text
                else f"ALTER COLUMN {c} TYPE {'bigint' if t is sa.BigInteger else 'integer'} "
                f"USING {c}::{'bigint' if t is sa.BigInteger else 'integer'}"
                for c, t in columns
            ]
            op.execute(f"ALTER TABLE {table} {', '.join(parts)}")
        op.create_foreign_key(FK, "items", "topics", ["topic_id"], ["topic_id"])
    else:
        for table, columns in ID_COLUMNS.items():
            with op.batch_alter_table(table) as batch:
                for c, t in columns:
                    old, new = (t(), sa.Text()) if to_text else (sa.Text(), t())
                    batch.alter_column(c, existing_type=old, type_=new)
    op.execute(VIEW)


def upgrade() -> None:
    _alter(to_text=True)


def _not_integer(column: str) -> str:
    if _postgresql():
        return f"{column} !~ '^-?[0-9]{{1,18}}$'"
    # GLOB has no repetition: a leading '-' is allowed, then digits only, 1 to 18 of them.
    body = f"(CASE WHEN substr({column}, 1, 1) = '-' THEN substr({column}, 2) ELSE {column} END)"
    return f"({body} = '' OR {body} GLOB '*[^0-9]*' OR length({body}) > 18)"


def downgrade() -> None:
    bind = op.get_bind()
    held = []
    for table, columns in ID_COLUMNS.items():
        for c, _ in columns:
            n = bind.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {c} IS NOT NULL AND {_not_integer(c)}")
            ).scalar_one()
            if n:
                sample = bind.execute(
                    sa.text(f"SELECT {c} FROM {table} WHERE {c} IS NOT NULL AND {_not_integer(c)}")
                ).scalar()
                held.append(f"{table}.{c} ({n:,} values such as {sample!r})")
    if held:
        raise MigrationRefused(
            "refusing to downgrade the warehouse below revision 0008: these id columns hold "
            f"text that is not an integer, which an integer column cannot keep: {'; '.join(held)}"
            ". Nothing was changed. Stay at revision 0008 (or delete those rows first)"
        )
    _alter(to_text=False)
