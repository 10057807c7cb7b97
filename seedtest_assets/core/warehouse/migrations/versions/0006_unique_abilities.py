"""One weekly ability per student-week: unique keys on mirt_ability (issue 13)

Every other output table is keyed by its partition and natural key already. ``mirt_ability``
is versioned history with a surrogate key, so two overlapping weekly writes could both
succeed (444 rows for 222 students) and the next ``weekly_kpi`` then failed on its own key.
This revision adds two partial unique indexes:

- ``uq_mirt_ability_weekly``: (week_start, user_id) where source = 'weekly';
- ``uq_mirt_ability_rescore``: (user_id, source, fitted_at) for online / on-demand rows.

Rows that already break them (duplicates written before) are reduced to the newest of each
duplicate set (the highest ability_id, i.e. the last write), since a set holds copies of one
scoring; the count removed is printed. Downgrade drops the indexes only (lossless).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: index name -> (columns, row filter); names and SQL are ours, never user input.
UNIQUE = {
    "uq_mirt_ability_weekly": (("week_start", "user_id"), "source = 'weekly'"),
    "uq_mirt_ability_rescore": (("user_id", "source", "fitted_at"), "source <> 'weekly'"),
}


def upgrade() -> None:
    bind = op.get_bind()
    for name, (columns, where) in UNIQUE.items():
        cols = ", ".join(columns)
        removed = bind.execute(
            text(
                f"DELETE FROM mirt_ability WHERE {where} AND ability_id NOT IN ("
                f"SELECT max(ability_id) FROM mirt_ability WHERE {where} GROUP BY {cols})"
            )
        ).rowcount
        if removed:
            print(f"0006: removed {removed} duplicate mirt_ability rows before {name}")
        op.create_index(
            name,
            "mirt_ability",
            list(columns),
            unique=True,
            postgresql_where=text(where),
            sqlite_where=text(where),
        )


def downgrade() -> None:
    for name in reversed(UNIQUE):
        op.drop_index(name, table_name="mirt_ability")
