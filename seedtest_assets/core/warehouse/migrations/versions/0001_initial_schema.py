"""initial schema

Downgrade drops every table: it refuses while any of them holds a row (the runner's
``--allow-data-loss`` overrides).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from seedtest_assets.core.warehouse.migrate import refuse_data_loss

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Every table this revision creates (what its downgrade drops).
TABLES = (
    "attempt_rejects",
    "attempts",
    "exam_sessions",
    "features_topic_daily",
    "mirt_ability",
    "mirt_item_params",
    "organizations",
    "report_artifacts",
    "topics",
    "truth_items",
    "truth_theta_weekly",
    "truth_users",
    "user_inactivity",
    "users",
    "weekly_kpi",
    "items",
)


def upgrade() -> None:
    op.create_table(
        "attempt_rejects",
        sa.Column("partition_date", sa.Date(), nullable=False),
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("rejected_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "partition_date", "attempt_id", "reason", name=op.f("pk_attempt_rejects")
        ),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("is_correct", sa.Boolean(), nullable=True),
        sa.Column("response_time_ms", sa.Integer(), nullable=True),
        sa.Column("hints_used", sa.Integer(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(), nullable=True),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attempts_attempted_at"), ["attempted_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_attempts_id"), ["id"], unique=False)
        batch_op.create_index(
            "ix_attempts_user_id_attempted_at", ["user_id", "attempted_at"], unique=False
        )

    op.create_table(
        "exam_sessions",
        sa.Column("session_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_exam_sessions")),
    )
    with op.batch_alter_table("exam_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exam_sessions_completed_at"), ["completed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_exam_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "features_topic_daily",
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("rt_median", sa.Float(), nullable=False),
        sa.Column("hints", sa.Integer(), nullable=False),
        sa.Column("improvement", sa.Float(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "date", "user_id", "topic_id", name=op.f("pk_features_topic_daily")
        ),
    )
    op.create_table(
        "mirt_ability",
        sa.Column(
            "ability_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("theta", sa.Float(), nullable=False),
        sa.Column("se", sa.Float(), nullable=False),
        sa.Column("model", sa.String(length=8), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("n_responses", sa.Integer(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ability_id", name=op.f("pk_mirt_ability")),
    )
    with op.batch_alter_table("mirt_ability", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mirt_ability_user_id_fitted_at", ["user_id", "fitted_at"], unique=False
        )
        batch_op.create_index(
            "ix_mirt_ability_week_start_source", ["week_start", "source"], unique=False
        )

    op.create_table(
        "mirt_item_params",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("model", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("week_start", "model", "item_id", name=op.f("pk_mirt_item_params")),
    )
    op.create_table(
        "organizations",
        sa.Column("org_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "report_artifacts",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("file_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("generated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "week_start", "user_id", "format", name=op.f("pk_report_artifacts")
        ),
    )
    op.create_table(
        "topics",
        sa.Column("topic_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("topic_id", name=op.f("pk_topics")),
    )
    op.create_table(
        "truth_items",
        sa.Column("item_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=8), nullable=False),
        sa.Column("a", sa.Float(), nullable=False),
        sa.Column("b", sa.Float(), nullable=False),
        sa.Column("c", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_truth_items")),
    )
    op.create_table(
        "truth_theta_weekly",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("theta", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "week_start", name=op.f("pk_truth_theta_weekly")),
    )
    op.create_table(
        "truth_users",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("theta0", sa.Float(), nullable=False),
        sa.Column("growth_per_week", sa.Float(), nullable=False),
        sa.Column("churn_week", sa.Date(), nullable=True),
        sa.Column("reached_goal", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_truth_users")),
    )
    op.create_table(
        "user_inactivity",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("days_inactive", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("as_of_date", "user_id", name=op.f("pk_user_inactivity")),
    )
    with op.batch_alter_table("user_inactivity", schema=None) as batch_op:
        batch_op.create_index("ix_user_inactivity_status", ["as_of_date", "status"], unique=False)

    op.create_table(
        "users",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("goal_theta", sa.Float(), nullable=True),
        sa.Column("goal_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_org_id"), ["org_id"], unique=False)

    op.create_table(
        "weekly_kpi",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kpis", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("week_start", "user_id", name=op.f("pk_weekly_kpi")),
    )
    op.create_table(
        "items",
        sa.Column("item_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.topic_id"], name=op.f("fk_items_topic_id_topics")
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_items")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_items_topic_id"), ["topic_id"], unique=False)


def downgrade() -> None:
    refuse_data_loss(revision, tables=TABLES)
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_topic_id"))

    op.drop_table("items")
    op.drop_table("weekly_kpi")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_org_id"))

    op.drop_table("users")
    with op.batch_alter_table("user_inactivity", schema=None) as batch_op:
        batch_op.drop_index("ix_user_inactivity_status")

    op.drop_table("user_inactivity")
    op.drop_table("truth_users")
    op.drop_table("truth_theta_weekly")
    op.drop_table("truth_items")
    op.drop_table("topics")
    op.drop_table("report_artifacts")
    op.drop_table("organizations")
    op.drop_table("mirt_item_params")
    with op.batch_alter_table("mirt_ability", schema=None) as batch_op:
        batch_op.drop_index("ix_mirt_ability_week_start_source")
        batch_op.drop_index("ix_mirt_ability_user_id_fitted_at")

    op.drop_table("mirt_ability")
    op.drop_table("features_topic_daily")
    with op.batch_alter_table("exam_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exam_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_exam_sessions_completed_at"))

    op.drop_table("exam_sessions")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_user_id_attempted_at")
        batch_op.drop_index(batch_op.f("ix_attempts_id"))
        batch_op.drop_index(batch_op.f("ix_attempts_attempted_at"))

    op.drop_table("attempts")
    op.drop_table("attempt_rejects")
