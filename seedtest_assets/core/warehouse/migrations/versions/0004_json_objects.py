"""JSON columns hold JSON objects on every backend (repair rows stored as JSON strings)

Before this revision the SQLite path encoded ``weekly_kpi.kpis`` and
``mirt_item_params.params`` twice: the column held a JSON *string* whose text was the object,
so ``json_extract(kpis, '$.I_t')`` / ``kpis->>'I_t'`` were NULL and readers got a string.
This revision unwraps such values in place (the object inside is kept exactly); rows that
already hold an object are untouched. PostgreSQL never wrote them, but is repaired the same way
in case a warehouse was filled by another path.

Downgrade: nothing to undo (an object is what every version of the code can read).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, JSON column) pairs; names are ours, never user input.
JSON_COLUMNS = (("weekly_kpi", "kpis"), ("mirt_item_params", "params"))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, column in JSON_COLUMNS:
        if dialect == "postgresql":
            # #>> '{}' is the string's text; cast back to json (the column's type).
            op.execute(
                f"UPDATE {table} SET {column} = ({column} #>> '{{}}')::json "
                f"WHERE json_typeof({column}) = 'string'"
            )
        else:
            # json_extract(x, '$') of a JSON string is its unquoted text: the object.
            op.execute(
                f"UPDATE {table} SET {column} = json_extract({column}, '$') "
                f"WHERE json_valid({column}) AND json_type({column}) = 'text'"
            )


def downgrade() -> None:
    pass
