"""topic_ability: per-topic ability as a stored weekly output (issue "One house")

The weekly reports scored every (student, topic) with IRT inside the report batch, so topic
ability was never stored. This revision adds the table the ``topic_ability`` asset writes:
one row per (week_start, user_id, topic_id), keyed by the partition column first like every
other output, with theta, SE, the window's responses scored, and the item parameters' model,
version and fitting time.

Downgrade drops the table; it refuses while the table holds a row (the runner's
``--allow-data-loss`` overrides: the rows are derived, materializing ``topic_ability`` again
rebuilds them). Every other table is untouched both ways.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from seedtest_assets.core.warehouse.migrate import refuse_data_loss

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "topic_ability",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("theta", sa.Float(), nullable=False),
        sa.Column("se", sa.Float(), nullable=False),
        sa.Column("n_responses", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=8), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("week_start", "user_id", "topic_id", name=op.f("pk_topic_ability")),
    )


def downgrade() -> None:
    refuse_data_loss(revision, tables=["topic_ability"])
    op.drop_table("topic_ability")
