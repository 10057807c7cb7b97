"""One theta per student-week: mirt_ability.theta is the growth line's ability (issue 12)

Before: ``theta``/``se`` held the window's EAP (constant ability over 12 weeks) while
``theta_end``/``theta_end_se`` held the growth line's value at the end of the week, and the
report, the KPIs, the UI and the CLI each showed one or the other. After: ``theta``/``se`` is
the growth line's ability at the row's reference time (the one every reader shows) and the
window EAP moves to ``theta_window``/``theta_window_se``.

Upgrade, row by row: ``theta_window := theta``; where the row has a growth fit
(``theta_end`` not NULL): ``theta := theta_end``, ``se := theta_end_se``. Rows without one
(online / on-demand rows written before this revision) keep their EAP as ``theta``.
Downgrade is the exact inverse for every row (no value is lost either way).

The view ``mirt_ability_latest`` reads the table, so it is dropped and re-created around
the table rebuild (SQLite rebuilds a table to drop a column).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
    op.execute("DROP VIEW mirt_ability_latest")
    with op.batch_alter_table("mirt_ability") as batch:
        batch.add_column(sa.Column("theta_window", sa.Float(), nullable=True))
        batch.add_column(sa.Column("theta_window_se", sa.Float(), nullable=True))
    op.execute("UPDATE mirt_ability SET theta_window = theta, theta_window_se = se")
    op.execute(
        "UPDATE mirt_ability SET theta = theta_end, se = theta_end_se "
        "WHERE theta_end IS NOT NULL AND theta_end_se IS NOT NULL"
    )
    with op.batch_alter_table("mirt_ability") as batch:
        batch.drop_column("theta_end_se")
        batch.drop_column("theta_end")
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW mirt_ability_latest")
    with op.batch_alter_table("mirt_ability") as batch:
        batch.add_column(sa.Column("theta_end", sa.Float(), nullable=True))
        batch.add_column(sa.Column("theta_end_se", sa.Float(), nullable=True))
    # Rows with a growth fit had theta_end before; the others' theta was already their EAP.
    op.execute(
        "UPDATE mirt_ability SET theta_end = theta, theta_end_se = se WHERE growth IS NOT NULL"
    )
    op.execute(
        "UPDATE mirt_ability SET theta = theta_window, se = theta_window_se "
        "WHERE theta_window IS NOT NULL AND theta_window_se IS NOT NULL"
    )
    with op.batch_alter_table("mirt_ability") as batch:
        batch.drop_column("theta_window_se")
        batch.drop_column("theta_window")
    op.execute(VIEW)
