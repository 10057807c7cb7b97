"""mirt_ability_latest: each student's current ability (the newest row of the history)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ROW_NUMBER works on PostgreSQL and SQLite (>= 3.25); ties on fitted_at go to the later row.
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
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW mirt_ability_latest")
