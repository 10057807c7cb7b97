"""``seedtest source check``: each source relation with its renames and ``ok``, or one line."""

from __future__ import annotations

import pytest

from seedtest_assets.core.source.relations import ENV
from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.product_source import PRODUCT_ENV, create_product_schema
from seedtest_assets_tests.test_cli import one_error_line, run_cli

#: Every SOURCE_* unset (the environment of the test run must not leak in).
NO_SOURCE: dict[str, str | None] = {k: None for v in ENV.values() for k in (v, f"{v}_COLUMNS")}


@pytest.fixture(scope="module")
def product_url():
    _require_postgres()
    url = create_postgres_database("seedtest_cli_source")
    engine = make_engine(url)
    create_product_schema(engine)
    engine.dispose()
    yield url
    drop_postgres_database(url)


def test_default_lists_our_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgrade(url)
    proc = run_cli("source", "check", env={**NO_SOURCE, "DATABASE_URL": url})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("source relations in ")
    assert lines[1:] == [
        f"  {t} <- {t}  ok"
        for t in ("attempts", "users", "items", "topics", "exam_sessions", "organizations")
    ]


def test_product_relations_with_their_renames(product_url):
    proc = run_cli("source", "check", env={**NO_SOURCE, **PRODUCT_ENV, "DATABASE_URL": product_url})
    assert proc.returncode == 0, proc.stderr
    assert (
        "  attempts <- exam.attempt (user_id=student_id, session_id=session_ref, "
        "item_id=question_id, topic_id=unit_id, is_correct=correct, "
        "response_time_ms=elapsed_ms, attempted_at=answered_at)  ok"
    ) in proc.stdout.splitlines()
    assert (
        "  topics <- exam.units (topic_id=unit_id, name=unit_name, name_en=unit_name_en)  ok"
        in (proc.stdout.splitlines())
    )


def test_a_missing_column_is_one_line_and_exit_4(product_url):
    env = {
        **NO_SOURCE,
        **PRODUCT_ENV,
        "DATABASE_URL": product_url,
        "SOURCE_ITEMS_COLUMNS": "item_id=question_id",  # topic_id: exam.questions has none
    }
    proc = run_cli("source", "check", env=env)
    assert proc.returncode == 4
    assert one_error_line(proc) == (
        "seedtest: error: source relation exam.questions (items) has no column topic_id: set "
        "SOURCE_ITEMS_COLUMNS"
    )
    assert proc.stdout == ""


def test_a_missing_relation_is_one_line_and_exit_4(product_url):
    env = {**NO_SOURCE, "DATABASE_URL": product_url, "SOURCE_ATTEMPTS": "public.attempt"}
    proc = run_cli("source", "check", env=env)
    assert proc.returncode == 4
    line = one_error_line(proc)
    assert "source relation public.attempt (attempts) does not exist: set SOURCE_ATTEMPTS" in line
    # our own tables are not migrated into this database either: each is named
    assert "source relation users (users) does not exist: set SOURCE_USERS" in line


def test_a_malformed_mapping_is_a_usage_error(tmp_path):
    env = {
        **NO_SOURCE,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}",
        "SOURCE_USERS_COLUMNS": "student_id=user_id",
    }
    proc = run_cli("source", "check", env=env)
    assert proc.returncode == 2
    assert "SOURCE_USERS_COLUMNS: 'student_id' is not a column of users" in one_error_line(proc)
    assert not (tmp_path / "none.db").exists()


def test_no_warehouse_file_is_exit_4_and_creates_nothing(tmp_path):
    env = {**NO_SOURCE, "DATABASE_URL": "", "SEEDTEST_HOME": str(tmp_path / "home")}
    proc = run_cli("source", "check", env=env)
    assert proc.returncode == 4
    assert "SQLite file missing" in one_error_line(proc)
    assert not (tmp_path / "home").exists()
