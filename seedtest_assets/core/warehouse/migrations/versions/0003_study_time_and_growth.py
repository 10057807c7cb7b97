"""study time in the daily features; ability growth in the weekly abilities (issue 4)

- ``features_topic_daily.study_ms``: summed response times (ms), the effort behind E_t.
- ``mirt_ability``: the weekly batch's linear-growth estimates (see irt/growth.py):
  ``theta_end`` and ``theta_end_se`` (ability at the end of the week), ``growth`` and
  ``growth_se`` (logits per week), ``growth_cov`` (their posterior covariance). NULL on online
  and on-demand rows, and on rows written before this revision.

Downgrade drops those columns: it refuses while any of them holds a value (the runner's
``--allow-data-loss`` overrides), since upgrading again would bring them back empty (and
``E_t`` null for everyone). The view ``mirt_ability_latest`` reads the table, so it is
dropped and re-created around the rebuild (SQLite rebuilds a table to drop a column, and
cannot rename the rebuilt table into place while a view names it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from seedtest_assets.core.warehouse.migrate import refuse_data_loss

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROWTH_COLUMNS = ("theta_end", "theta_end_se", "growth", "growth_se", "growth_cov")

# As revision 0002 created it (the view of that revision's table).
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


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things in place; on PostgreSQL it is a plain
    # ALTER TABLE ADD COLUMN (nullable, no rewrite).
    with op.batch_alter_table("features_topic_daily") as batch:
        batch.add_column(sa.Column("study_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("mirt_ability") as batch:
        for name in GROWTH_COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    refuse_data_loss(
        revision,
        columns={"features_topic_daily": ["study_ms"], "mirt_ability": list(GROWTH_COLUMNS)},
    )
    op.execute("DROP VIEW mirt_ability_latest")
    with op.batch_alter_table("mirt_ability") as batch:
        for name in reversed(GROWTH_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("features_topic_daily") as batch:
        batch.drop_column("study_ms")
    op.execute(VIEW)
