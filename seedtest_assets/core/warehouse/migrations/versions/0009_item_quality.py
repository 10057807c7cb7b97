"""item_quality: each week's items judged (SEs, fit, information, drift, DIF) (issue 16)

Adds the table the ``item_quality`` asset writes: one row per (week_start, model, item_id),
keyed by the partition column first like every other output. The standard errors also go
into ``mirt_item_params.params`` (``params->>'b_se'``), which is JSON and needs no change.

Downgrade drops the table; it refuses while the table holds a row (the runner's
``--allow-data-loss`` overrides: the rows are derived, materializing ``item_quality`` again
rebuilds them). Every other table is untouched both ways.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from seedtest_assets.core.warehouse.migrate import refuse_data_loss

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "item_quality",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("model", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("a", sa.Float(), nullable=False),
        sa.Column("b", sa.Float(), nullable=False),
        sa.Column("c", sa.Float(), nullable=False),
        sa.Column("a_se", sa.Float(), nullable=True),
        sa.Column("b_se", sa.Float(), nullable=True),
        sa.Column("c_se", sa.Float(), nullable=True),
        sa.Column("n_responses", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("s_x2", sa.Float(), nullable=True),
        sa.Column("fit_df", sa.Integer(), nullable=True),
        sa.Column("fit_p", sa.Float(), nullable=True),
        sa.Column("misfit", sa.Boolean(), nullable=False),
        sa.Column("information", sa.Float(), nullable=True),
        sa.Column("drift_z_a", sa.Float(), nullable=True),
        sa.Column("drift_z_b", sa.Float(), nullable=True),
        sa.Column("drift_p", sa.Float(), nullable=True),
        sa.Column("drifted", sa.Boolean(), nullable=True),
        sa.Column("dif_lr", sa.Float(), nullable=True),
        sa.Column("dif_df", sa.Integer(), nullable=True),
        sa.Column("dif_p", sa.Float(), nullable=True),
        sa.Column("dif_groups", sa.Integer(), nullable=True),
        sa.Column("dif_max_b_shift", sa.Float(), nullable=True),
        sa.Column("dif", sa.Boolean(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=True),
        sa.Column("assessed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("week_start", "model", "item_id", name=op.f("pk_item_quality")),
    )


def downgrade() -> None:
    refuse_data_loss(revision, tables=["item_quality"])
    op.drop_table("item_quality")
