"""The warehouse tables as SQLAlchemy Core metadata (the single source for migrations and code).

All timestamps are naive UTC (``timestamp without time zone``) so SQLite and PostgreSQL agree.

Source tables (written by the exam product, or by ``seedtest generate``): ``organizations``,
``users``, ``topics``, ``items``, ``exam_sessions``, ``attempts``. ``attempts`` is deliberately
loose (nullable columns, no foreign keys, ``id`` not unique): it mirrors an external feed that
we validate rather than trust; bad rows are quarantined into ``attempt_rejects``.

Output tables are keyed by their partition column first (``date`` / ``week_start`` /
``as_of_date``) so that re-running a partition is ``DELETE WHERE partition = p`` + ``INSERT`` in
one transaction: a replace, never a duplicate.

``truth_*`` tables hold the synthetic generator's ground truth (never present in production).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeEngine

from seedtest_assets.core.ids import ID_COLUMNS

# Naming convention so Alembic migrations and metadata agree on constraint names.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

#: The type of the product's identifiers: students, organisations, sessions, items, topics
#: (migration 0008). They are the product's own strings (``"test-user-123"``, ``"org123"``, a
#: JWT ``sub``), stored and compared byte for byte: never trimmed, case-folded or normalised
#: (``"U1"`` and ``"u1"`` are two students, as in the product's tables). TEXT rather than an
#: integer also because SQLite's INTEGER affinity would turn the text ``"007"`` into 7.
#: What an id may be is :func:`seedtest_assets.core.ids.id_problem`'s rule.
Ident = Text


def id_columns(table: Table) -> tuple[str, ...]:
    """The names of ``table``'s product-id columns (typed :data:`Ident`, named in
    :data:`seedtest_assets.core.ids.ID_COLUMNS`), in table order."""
    return tuple(
        c.name for c in table.columns if c.name in ID_COLUMNS and isinstance(c.type, Ident)
    )


# --------------------------------------------------------------------------- source tables
organizations = Table(
    "organizations",
    metadata,
    Column("org_id", Ident, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("user_id", Ident, primary_key=True, autoincrement=False),
    Column("org_id", Ident, nullable=False, index=True),
    Column("display_name", Text, nullable=False),
    Column("goal_theta", Float, nullable=True),  # target ability on the IRT theta scale
    Column("goal_date", Date, nullable=True),
    Column("created_at", DateTime, nullable=False),
)

topics = Table(
    "topics",
    metadata,
    Column("topic_id", Ident, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),  # Korean label shown to students
    Column("name_en", Text, nullable=True),
)

items = Table(
    "items",
    metadata,
    Column("item_id", Ident, primary_key=True, autoincrement=False),
    Column("topic_id", Ident, ForeignKey("topics.topic_id"), nullable=False, index=True),
)

exam_sessions = Table(
    "exam_sessions",
    metadata,
    Column("session_id", Ident, primary_key=True, autoincrement=False),
    Column("user_id", Ident, nullable=False, index=True),
    Column("started_at", DateTime, nullable=False),
    Column("completed_at", DateTime, nullable=True, index=True),
)

attempts = Table(
    "attempts",
    metadata,
    # Monotonically increasing in arrival order (the sensor's cursor); not declared unique
    # because the feed is not trusted: duplicates are detected and quarantined.
    Column("id", BigInteger, nullable=False, index=True),
    Column("user_id", Ident, nullable=True),
    Column("session_id", Ident, nullable=True),
    Column("item_id", Ident, nullable=True),
    Column("topic_id", Ident, nullable=True),
    Column("is_correct", Boolean, nullable=True),
    Column("response_time_ms", Integer, nullable=True),
    Column("hints_used", Integer, nullable=True),
    Column("attempted_at", DateTime, nullable=True, index=True),
    Index("ix_attempts_user_id_attempted_at", "user_id", "attempted_at"),
)

# --------------------------------------------------------------------------- outputs
features_topic_daily = Table(
    "features_topic_daily",
    metadata,
    Column("date", Date, primary_key=True),
    Column("user_id", Ident, primary_key=True),
    Column("topic_id", Ident, primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("correct", Integer, nullable=False),
    Column("accuracy", Float, nullable=False),  # correct / attempts, in [0, 1]
    Column("rt_median", Float, nullable=False),  # median response time, milliseconds
    Column("hints", Integer, nullable=False),
    Column("improvement", Float, nullable=True),  # see docs/features.md
    Column("last_attempt_at", DateTime, nullable=False),
    Column("computed_at", DateTime, nullable=False),
    # Summed response times, ms (migration 0003; NULL on rows computed before it).
    Column("study_ms", BigInteger, nullable=True),
    # No (user_id, date) index: a student's week is 7 seeks on the primary key, and every
    # extra index makes the daily replace slower (measured: 0.13 s of 0.16 s per 19k rows).
)

attempt_rejects = Table(
    "attempt_rejects",
    metadata,
    Column("partition_date", Date, primary_key=True),
    Column("attempt_id", BigInteger, primary_key=True),
    Column("reason", String(40), primary_key=True),
    Column("detail", Text, nullable=True),
    Column("raw", Text, nullable=True),  # the rejected row(s) as JSON, so nothing is lost
    Column("rows", Integer, nullable=False),  # input rows this record stands for
    Column("rejected_at", DateTime, nullable=False),
)

user_inactivity = Table(
    "user_inactivity",
    metadata,
    Column("as_of_date", Date, primary_key=True),
    Column("user_id", Ident, primary_key=True),
    Column("last_attempt_at", DateTime, nullable=True),
    Column("days_inactive", Integer, nullable=True),  # NULL when never active
    Column("status", String(16), nullable=False),
    Column("computed_at", DateTime, nullable=False),
    Index("ix_user_inactivity_status", "as_of_date", "status"),
)

weekly_kpi = Table(
    "weekly_kpi",
    metadata,
    Column("week_start", Date, primary_key=True),
    Column("user_id", Ident, primary_key=True),
    Column("kpis", JSON, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

mirt_item_params = Table(
    "mirt_item_params",
    metadata,
    Column("week_start", Date, primary_key=True),
    Column("model", String(8), primary_key=True),
    Column("item_id", Ident, primary_key=True),
    Column("params", JSON, nullable=False),  # {"a", "b", "c", "d", ...}
    Column("version", String(64), nullable=False),
    Column("fitted_at", DateTime, nullable=False),
)

mirt_ability = Table(
    "mirt_ability",
    metadata,
    # Append-only history: each scoring is a new row; the latest per user is the current one.
    # ``theta``/``se`` is *the* student's ability (docs/irt.md, "One theta"): the value at the
    # row's reference time (the end of ``week_start``'s week for weekly rows, ``fitted_at``
    # for online / on-demand rows) of the linear growth line fitted through the window's
    # responses (irt/growth.py). Every report, KPI, UI event and API answer shows this one.
    Column("ability_id", AutoId, primary_key=True, autoincrement=True),
    Column("user_id", Ident, nullable=False),
    Column("week_start", Date, nullable=False),
    Column("theta", Float, nullable=False),  # logits, at the reference time
    Column("se", Float, nullable=False),  # posterior SD of theta
    Column("model", String(8), nullable=False),
    Column("version", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # weekly | online | on_demand
    Column("n_responses", Integer, nullable=False),
    Column("fitted_at", DateTime, nullable=False),
    Column("growth", Float, nullable=True),  # slope of the line, logits per week
    Column("growth_se", Float, nullable=True),
    Column("growth_cov", Float, nullable=True),  # posterior cov(theta, growth)
    # The window's EAP assuming constant ability (migration 0005): a 12-week average, kept
    # for comparison and diagnostics; never shown as "the" theta.
    Column("theta_window", Float, nullable=True),
    Column("theta_window_se", Float, nullable=True),
    Index("ix_mirt_ability_user_id_fitted_at", "user_id", "fitted_at"),
    Index("ix_mirt_ability_week_start_source", "week_start", "source"),
    # One weekly row per student-week, one re-score row per student, source and instant
    # (migration 0006): overlapping writes can never double a week's abilities.
    Index(
        "uq_mirt_ability_weekly",
        "week_start",
        "user_id",
        unique=True,
        postgresql_where=text("source = 'weekly'"),
        sqlite_where=text("source = 'weekly'"),
    ),
    Index(
        "uq_mirt_ability_rescore",
        "user_id",
        "source",
        "fitted_at",
        unique=True,
        postgresql_where=text("source <> 'weekly'"),
        sqlite_where=text("source <> 'weekly'"),
    ),
)

topic_ability = Table(
    "topic_ability",
    metadata,
    # Per-topic ability of the week (migration 0007): each (student, topic) of the look-back
    # window scored as its own pseudo-student (EAP) with the item parameters the reports use
    # (the latest calibration on or before the week, flagged items left out). A diagnostic per
    # topic for the weekly report; never "the" theta (that is mirt_ability's).
    Column("week_start", Date, primary_key=True),
    Column("user_id", Ident, primary_key=True),
    Column("topic_id", Ident, primary_key=True),
    Column("theta", Float, nullable=False),  # logits, EAP over the window's responses
    Column("se", Float, nullable=False),  # posterior SD of theta
    Column("n_responses", Integer, nullable=False),  # window responses scored (known items)
    Column("model", String(8), nullable=False),
    Column("version", String(64), nullable=False),  # of the item parameters used
    Column("fitted_at", DateTime, nullable=False),
)

item_quality = Table(
    "item_quality",
    metadata,
    # Per item of one week's calibration (migration 0009): standard errors, fit, information,
    # drift against last week and DIF across organisations (core/item_quality/assess.py says
    # how each is decided). Parameters on the stored (linked) scale, as in mirt_item_params.
    Column("week_start", Date, primary_key=True),
    Column("model", String(8), primary_key=True),
    Column("item_id", Ident, primary_key=True),
    Column("version", String(64), nullable=False),  # of the item parameters judged
    Column("a", Float, nullable=False),
    Column("b", Float, nullable=False),
    Column("c", Float, nullable=False),
    Column("a_se", Float),
    Column("b_se", Float),
    Column("c_se", Float),
    Column("n_responses", Integer, nullable=False),
    Column("flagged", Boolean, nullable=False),  # by the calibration: not used for scoring
    Column("s_x2", Float),  # item fit given the other responses; null: not tested
    Column("fit_df", Integer),
    Column("fit_p", Float),
    Column("misfit", Boolean, nullable=False),
    Column("information", Float),  # Fisher information at the population's mean theta
    Column("drift_z_a", Float),  # change since last week in SEs; null: not tested
    Column("drift_z_b", Float),
    Column("drift_p", Float),
    Column("drifted", Boolean),  # null: not tested (new item, no SEs last week)
    Column("dif_lr", Float),  # DIF across organisations; null: not tested
    Column("dif_df", Integer),
    Column("dif_p", Float),
    Column("dif_groups", Integer),
    Column("dif_max_b_shift", Float),  # logits
    Column("dif", Boolean, nullable=False),
    Column("problems", Text),  # "misfit;drift;dif", null: none
    Column("assessed_at", DateTime, nullable=False),
)

report_artifacts = Table(
    "report_artifacts",
    metadata,
    Column("week_start", Date, primary_key=True),
    Column("user_id", Ident, primary_key=True),
    Column("format", String(8), primary_key=True),  # html | pdf
    Column("url", Text, nullable=False),
    Column("file_size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("generated_at", DateTime, nullable=False),
)

# --------------------------------------------------------------------------- synthetic truth
truth_items = Table(
    "truth_items",
    metadata,
    Column("item_id", Ident, primary_key=True, autoincrement=False),
    Column("topic_id", Ident, nullable=False),
    Column("model", String(8), nullable=False),  # 2PL or 3PL
    Column("a", Float, nullable=False),
    Column("b", Float, nullable=False),
    Column("c", Float, nullable=False),
)

truth_users = Table(
    "truth_users",
    metadata,
    Column("user_id", Ident, primary_key=True, autoincrement=False),
    Column("theta0", Float, nullable=False),  # ability at the start of the period
    Column("growth_per_week", Float, nullable=False),  # theta units per week while active
    Column("churn_week", Date, nullable=True),  # first Monday with no activity; NULL = stayed
    Column("reached_goal", Boolean, nullable=False),  # true theta >= goal_theta by goal_date
)

truth_theta_weekly = Table(
    "truth_theta_weekly",
    metadata,
    Column("user_id", Ident, primary_key=True),
    Column("week_start", Date, primary_key=True),
    Column("theta", Float, nullable=False),
)

SOURCE_TABLES = (organizations, users, topics, items, exam_sessions, attempts)
TRUTH_TABLES = (truth_items, truth_users, truth_theta_weekly)


# --------------------------------------------------------------------------- polars frames
def polars_dtype(sql_type: TypeEngine) -> pl.DataType:
    """The polars dtype a column of ``sql_type`` is read into and written from.

    Integer kinds (``Integer``, ``BigInteger``, ``SmallInteger``) -> ``Int64``; ``Float`` ->
    ``Float64``; ``Boolean`` -> ``Boolean``; ``DateTime`` -> ``Datetime("us")`` (naive UTC);
    ``Date`` -> ``Date``; everything else (``Text``, ``String``, ``JSON``) -> ``String`` (JSON
    travels as its JSON text, see :func:`~seedtest_assets.core.warehouse.db.insert_frame`).
    """
    if isinstance(sql_type, Boolean):
        return pl.Boolean()
    if isinstance(sql_type, Integer):  # BigInteger and SmallInteger are Integer subclasses
        return pl.Int64()
    if isinstance(sql_type, Float):
        return pl.Float64()
    if isinstance(sql_type, DateTime):
        return pl.Datetime("us")
    if isinstance(sql_type, Date):
        return pl.Date()
    return pl.String()


#: A polars schema as this package builds it (column -> dtype). Keys are typed ``Any`` only
#: because polars' ``cast()`` stub wants ``str | selector`` keys and dict keys are invariant.
FrameSchema = dict[Any, pl.DataType]


def polars_schema(
    table: Table,
    columns: Sequence[str] | None = None,
    overrides: Mapping[str, pl.DataType] | None = None,
) -> FrameSchema:
    """The polars schema of ``table``'s rows, derived from its columns (:func:`polars_dtype`).

    Args:
        table: a table of this module.
        columns: only these columns, in this order (default: all, in table order).
        overrides: dtypes replacing the derived ones of some of the selected columns (a
            frame that legitimately differs from its table says so here).

    Returns:
        column name -> polars dtype, in column order.

    Raises:
        KeyError: a column of ``columns`` or ``overrides`` that is not selected from ``table``.
    """
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise KeyError(f"{table.name} has no column(s) {unknown}")
    out = {n: polars_dtype(table.c[n].type) for n in names}
    extra = [n for n in overrides or {} if n not in out]
    if extra:
        raise KeyError(f"overrides of column(s) {extra} not selected from {table.name}")
    out.update(overrides or {})
    return out
