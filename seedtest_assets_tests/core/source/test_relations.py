"""Reading the product's own relations (``SOURCE_*``): mapping, readers, start check.

On PostgreSQL a product-shaped ``exam`` schema (tables, a view, renamed columns, text ids
such as ``'test-user-123'``) stands in for the exam product's database.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select, text

from seedtest_assets.core.source import attempts, topics, users
from seedtest_assets.core.source.relations import (
    SourceConfigError,
    SourceNotReady,
    SourceRelations,
    check_source,
    clear_source_cache,
    source_tables,
)
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.factories import DAY, at, attempts_frame, insert_attempts, seed_reference
from seedtest_assets_tests.product_source import (
    PRODUCT_ENV,
    catalog_snapshot,
    create_product_schema,
    point_at_product,
)

MONDAY = date(2026, 3, 2)

ROWS = """
INSERT INTO exam.academies VALUES ('org123', 'Seoul Academy');
INSERT INTO exam.students VALUES
    ('test-user-123', 'org123', 'Kim', 0.5, '2026-06-01', '2026-01-05 10:00'),
    ('test-user-456', 'org123', 'Lee', NULL, NULL, '2026-01-06 11:00'),
    ('late-user', 'org-elsewhere', 'Park', NULL, NULL, '2026-04-01 00:00');
INSERT INTO exam.units VALUES ('topic-a', '대수', 'Algebra');
INSERT INTO exam.questions VALUES ('item-1', 'topic-a'), ('item-2', 'topic-a');
INSERT INTO exam.exam_sessions VALUES
    ('session456', 'test-user-123', '2026-03-02 09:00', '2026-03-02 09:30');
INSERT INTO exam.answers VALUES
    (1, 'test-user-123', 'item-1', 'topic-a', 'session456', true, 12000, 0, '2026-03-02 09:05'),
    (2, 'test-user-123', 'item-2', 'topic-a', 'session456', false, 30000, 1, '2026-03-02 09:10'),
    (3, 'ghost-user', 'item-9', 'topic-a', NULL, true, 5000, 0, '2026-03-02 10:00'),
    (4, 'test-user-456', 'item-1', 'topic-a', NULL, true, 8000, 2, '2026-03-03 08:00');
"""


@pytest.fixture(scope="module")
def product_db():
    """A database holding the ``exam`` schema with :data:`ROWS` and nothing of ours."""
    _require_postgres()
    url = create_postgres_database("seedtest_source")
    engine = make_engine(url)
    create_product_schema(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(ROWS)
    yield url, engine
    engine.dispose()
    drop_postgres_database(url)


@pytest.fixture
def product(product_db, source_env):
    _, engine = product_db
    point_at_product(source_env)
    return engine


# --------------------------------------------------------------------------- configuration
def test_default_relations_are_our_tables(source_env):
    src = source_tables()
    assert src.relations.is_default
    for name in ("attempts", "users", "items", "topics", "exam_sessions", "organizations"):
        assert getattr(src, name) is getattr(s, name)  # the very tables: SQL as before
    sql = str(attempts.attempts_window_select(DAY, DAY).compile())
    assert "CAST" not in sql and "FROM attempts LEFT OUTER JOIN users" in sql


def test_the_mapping_gives_our_keys_and_the_products_quoted_names(source_env):
    point_at_product(source_env)
    a = source_tables().attempts
    assert a.schema == "exam" and a.name == "attempt"
    assert a.c.user_id.name == "student_id" and a.c.hints_used.name == "hints_used"
    assert a.metadata is not s.metadata  # never seen by Alembic
    sql = str(select(a.c.user_id).compile())
    assert sql.startswith('SELECT "exam"."attempt"."student_id"'), sql


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SOURCE_ATTEMPTS_COLUMNS": "student=student_id"},
            "'student' is not a column of attempts",
        ),
        ({"SOURCE_ATTEMPTS_COLUMNS": "user_id"}, "entry 'user_id' is not our_column=product"),
        ({"SOURCE_ATTEMPTS_COLUMNS": "user_id=a=b"}, "is not our_column=product_column"),
        ({"SOURCE_ATTEMPTS_COLUMNS": "user_id=x,user_id=y"}, "'user_id' is mapped twice"),
        ({"SOURCE_ATTEMPTS_COLUMNS": "id=user_id"}, "id and user_id would both read"),
        ({"SOURCE_USERS_COLUMNS": "user_id=student id"}, "SOURCE_USERS_COLUMNS: column 'student"),
        ({"SOURCE_ATTEMPTS": "exam.attempt; DROP TABLE x"}, "is not an identifier"),
        ({"SOURCE_ATTEMPTS": 'exam."attempt"'}, "is not an identifier"),
        ({"SOURCE_ATTEMPTS": "a.b.c"}, "expected name or schema.name"),
        ({"SOURCE_TOPICS": "1topics"}, "SOURCE_TOPICS: relation part '1topics'"),
    ],
)
def test_malformed_settings_are_refused(env, message):
    with pytest.raises(SourceConfigError, match=message):
        SourceRelations.from_env(env)


def test_the_env_is_read_once_until_the_cache_is_cleared(source_env):
    assert source_tables().attempts is s.attempts
    source_env.setenv("SOURCE_ATTEMPTS", "exam.attempt")
    assert source_tables().attempts is s.attempts  # cached
    clear_source_cache()
    assert source_tables().attempts.name == "attempt"


# --------------------------------------------------------------------------- readers
def test_window_rows_with_our_column_names(product):
    with product.connect() as conn:
        frame = attempts.read_window(conn, MONDAY, date(2026, 3, 3)).sort("id")
    assert frame.columns == [
        "id",
        *attempts.TEXT_COLUMNS,
        "user_known",
        "item_topic_id",
    ]
    assert frame["id"].to_list() == [1, 2, 3]
    assert frame["user_id"].to_list() == ["test-user-123", "test-user-123", "ghost-user"]
    assert frame["session_id"].to_list() == ["session456", "session456", None]
    assert frame["hints_used"].to_list() == [0, 1, 0]
    assert frame["user_known"].to_list() == [True, True, False]
    assert frame["item_topic_id"].to_list() == ["topic-a", "topic-a", None]  # item-9 unknown
    assert frame["attempted_at"][0] == datetime(2026, 3, 2, 9, 5)


def test_other_readers_read_the_product(product):
    with product.connect() as conn:
        assert attempts.count_owned(conn, MONDAY, date(2026, 3, 4)) == 4
        assert attempts.max_id(conn) == 4
        first = attempts.first_rows(conn, 1)[0]
        assert first["user_id"] == "test-user-123" and first["attempted_at"] is not None
        assert users.existing(conn, "user_id", ["test-user-123", "nobody"]) == {"test-user-123"}
        assert users.existing(conn, "org_id", ["org123"]) == {"org123"}
        registered = users.read_registered(conn, datetime(2026, 3, 1))
        assert sorted(registered["user_id"]) == ["test-user-123", "test-user-456"]
        goals = users.read_goals(conn)
        assert goals.rows() == [("test-user-123", 0.5, date(2026, 6, 1))]
        assert users.read_goals(conn, ["test-user-456"])["user_id"].to_list() == ["test-user-456"]
        picked, n = users.select_students(
            conn, among=attempts.users_with_attempts(MONDAY, date(2026, 3, 3)), limit=10
        )
        assert n == 1
        assert picked.rows() == [("test-user-123", "Kim", "Seoul Academy", 0.5, date(2026, 6, 1))]
        everyone, _ = users.select_students(conn, limit=10)
        late = everyone.filter(everyone["user_id"] == "late-user")
        assert late["org_name"].to_list() == [""]  # an academy the product does not list
        assert topics.read_topic_names(conn).rows() == [("topic-a", "대수", "Algebra")]
        found = attempts.source_anomalies(conn, datetime(2026, 3, 10))
        assert found["duplicated_ids"] == 0 and found["null_attempted_at"] == 0


def test_integer_ids_of_the_product_are_read_as_text(product_db, source_env):
    """A product keeping integer ids: the SELECT list casts them, the joins do not."""
    _, engine = product_db
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE SCHEMA IF NOT EXISTS intexam;"
            "CREATE TABLE IF NOT EXISTS intexam.students (id bigint PRIMARY KEY, org bigint,"
            " name text, goal float8, goal_day date, created timestamp);"
            "CREATE TABLE IF NOT EXISTS intexam.answers (id bigint, student bigint, item bigint,"
            " topic bigint, session bigint, ok boolean, ms int, hints int, at timestamp);"
            "CREATE TABLE IF NOT EXISTS intexam.items (id bigint PRIMARY KEY, topic bigint);"
            "TRUNCATE intexam.students, intexam.answers, intexam.items;"
            "INSERT INTO intexam.students VALUES (123, 7, 'Kim', NULL, NULL, '2026-01-01');"
            "INSERT INTO intexam.items VALUES (55, 9);"
            "INSERT INTO intexam.answers VALUES (1, 123, 55, 9, 77, true, 1000, 0,"
            " '2026-03-02 09:00');"
        )
    point_at_product(
        source_env,
        {
            "SOURCE_ATTEMPTS": "intexam.answers",
            "SOURCE_ATTEMPTS_COLUMNS": "user_id=student,item_id=item,topic_id=topic,"
            "session_id=session,is_correct=ok,response_time_ms=ms,hints_used=hints,"
            "attempted_at=at",
            "SOURCE_USERS": "intexam.students",
            "SOURCE_USERS_COLUMNS": "user_id=id,org_id=org,display_name=name,goal_theta=goal,"
            "goal_date=goal_day,created_at=created",
            "SOURCE_ITEMS": "intexam.items",
            "SOURCE_ITEMS_COLUMNS": "item_id=id,topic_id=topic",
        },
    )
    stmt = attempts.attempts_window_select(MONDAY, date(2026, 3, 3))
    sql = str(stmt.compile(dialect=engine.dialect))
    on = sql.split(" ON ", 1)[1].split("WHERE")[0]
    assert "CAST" not in on and "CAST" not in sql.split("WHERE", 1)[1]  # indexes stay usable
    with engine.connect() as conn:
        frame = attempts.read_window(conn, MONDAY, date(2026, 3, 3))
        assert frame.row(0, named=True) | {"attempted_at": None} == {
            "id": 1,
            "user_id": "123",
            "session_id": "77",
            "item_id": "55",
            "topic_id": "9",
            "is_correct": True,
            "response_time_ms": 1000,
            "hints_used": 0,
            "attempted_at": None,
            "user_known": True,
            "item_topic_id": "9",
        }
        assert users.existing(conn, "user_id", ["123", "124"]) == {"123"}


def test_default_reads_our_own_tables_as_before(warehouse_url, source_env):
    seed_reference(warehouse_url)
    insert_attempts(
        warehouse_url,
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "item_id": 100, "attempted_at": at(DAY, 9)},
                {"id": 2, "user_id": 99, "item_id": 999, "attempted_at": at(DAY, 10)},
            ]
        ),
    )
    engine = make_engine(warehouse_url)
    with engine.connect() as conn:
        frame = attempts.read_window(conn, DAY, DAY.replace(day=DAY.day + 1)).sort("id")
        check_source(engine)  # our migrated tables pass the start check
    engine.dispose()
    assert frame["user_id"].to_list() == ["1", "99"]
    assert frame["user_known"].to_list() == [True, False]
    assert frame["item_topic_id"].to_list() == ["1", None]


# --------------------------------------------------------------------------- start check
def test_check_source_passes_on_the_product(product):
    check_source(product)


def test_check_source_names_a_missing_relation(product, source_env):
    point_at_product(source_env, {"SOURCE_TOPICS": "exam.unit"})
    with pytest.raises(SourceNotReady) as err:
        check_source(product)
    assert str(err.value) == (
        "source relation exam.unit (topics) does not exist: set SOURCE_TOPICS"
    )


def test_check_source_names_missing_columns(product, source_env):
    point_at_product(
        source_env,
        {
            "SOURCE_ATTEMPTS_COLUMNS": PRODUCT_ENV["SOURCE_ATTEMPTS_COLUMNS"].replace(
                "answered_at", "answerd_at"
            ),
            "SOURCE_ORGANIZATIONS_COLUMNS": "org_id=academy_id",  # name: no such column
            "SOURCE_SESSIONS_COLUMNS": "session_id=session_ref,user_id=student_id,"
            "completed_at=finished_at",  # started_at is not read: not required
        },
    )
    with pytest.raises(SourceNotReady) as err:
        check_source(product)
    assert str(err.value) == (
        "source relation exam.attempt (attempts) has no column answerd_at (our attempted_at): "
        "set SOURCE_ATTEMPTS_COLUMNS; source relation exam.academies (organizations) has no "
        "column name: set SOURCE_ORGANIZATIONS_COLUMNS"
    )


def test_check_source_in_a_schema_that_does_not_exist(product, source_env):
    point_at_product(source_env, {"SOURCE_ITEMS": "nowhere.questions"})
    with pytest.raises(SourceNotReady, match=r"nowhere\.questions \(items\) does not exist"):
        check_source(product)


def test_the_warehouse_resource_runs_the_start_check(product_db, source_env):
    import dagster as dg

    from seedtest_assets.defs.resources import WarehouseResource

    url, _ = product_db
    point_at_product(source_env, {**PRODUCT_ENV, "SOURCE_USERS": "exam.pupils"})
    resource = WarehouseResource(database_url=url)
    with pytest.raises(SourceNotReady, match=r"exam\.pupils"):
        resource.setup_for_execution(dg.build_init_resource_context())
    resource.teardown_after_execution(dg.build_init_resource_context())


# --------------------------------------------------------------------------- migrations
def test_our_migrations_never_touch_the_product_schema(source_env):
    _require_postgres()
    url = create_postgres_database("seedtest_source_mig")
    engine = make_engine(url)
    try:
        create_product_schema(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql(ROWS)
        before = catalog_snapshot(engine)
        point_at_product(source_env)  # even with SOURCE_* set: Alembic sees only our metadata
        upgrade(url)
        after = catalog_snapshot(engine)
        with engine.connect() as conn:
            ours = conn.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
            ).scalar_one()
        check_source(engine)
    finally:
        engine.dispose()
        drop_postgres_database(url)
    assert after == before
    assert before["counts"] == [
        ("academies", 1),
        ("answers", 4),
        ("attempt", 4),
        ("exam_sessions", 1),
        ("questions", 2),
        ("students", 3),
        ("units", 1),
    ]
    assert ours >= len(s.metadata.tables)  # ours went to public
