"""``seedtest score --user U``: the original update-theta answer, from the command line.

The command runs in a subprocess with the test's frozen clock (``SEEDTEST_FROZEN_NOW``), so
the data seeded "1 day ago" and the command's "now" are the same instant's.
"""

import json
from datetime import datetime

import polars as pl
import pytest
from sqlalchemy import select

from seedtest_assets.core.warehouse import insert_frame, make_engine, read_frame, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.online_factories import seed_scoring
from seedtest_assets_tests.test_cli import one_error_line, run_cli


def add_student_like(url: str, user_id: str, like: str) -> None:
    """A student ``user_id`` (a product text id) with a copy of student ``like``'s answers."""
    engine = make_engine(url)
    with engine.connect() as conn:
        user = read_frame(conn, select(s.users).where(s.users.c.user_id == like))
        answers = read_frame(conn, select(s.attempts).where(s.attempts.c.user_id == like))
        first = conn.execute(select(s.attempts.c.id).order_by(s.attempts.c.id.desc())).first()
    with transaction(engine) as conn:
        insert_frame(conn, s.users, user.with_columns(user_id=pl.lit(user_id)))
        insert_frame(
            conn,
            s.attempts,
            answers.with_columns(user_id=pl.lit(user_id), id=pl.int_range(pl.len()) + first[0] + 1),
        )
    engine.dispose()


def score(url: str, tmp_path, clock, *args: str):
    env = {"DATABASE_URL": url, "SEEDTEST_HOME": str(tmp_path), **clock.env()}
    return run_cli("score", *args, env=env)


def test_score_prints_the_original_fields_and_writes_an_on_demand_row(sqlite_url, tmp_path, clock):
    version = seed_scoring(sqlite_url, clock.now)
    proc = score(sqlite_url, tmp_path, clock, "--user", "1")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert list(body) == ["status", "user_id", "theta", "se", "model", "version", "updated_at"]
    assert body["status"] == "ok" and body["user_id"] == "1"  # the id as text, as given
    assert body["model"] == "2PL" and body["version"] == version
    assert -1.5 < body["theta"] < 1.5 and 0 < body["se"] < 1
    updated = datetime.fromisoformat(body["updated_at"].removesuffix("Z"))
    assert updated == clock.now  # the subprocess honoured SEEDTEST_FROZEN_NOW
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        row = conn.execute(select(s.mirt_ability)).mappings().one()
    engine.dispose()
    assert (row["user_id"], row["source"], row["theta"]) == ("1", "on_demand", body["theta"])


def test_score_without_attempts_is_a_noop_not_an_error(sqlite_url, tmp_path, clock):
    seed_scoring(sqlite_url, clock.now)
    proc = score(sqlite_url, tmp_path, clock, "--user", "3", "--lookback-days", "30")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body == {
        "status": "noop",
        "user_id": "3",
        "message": "no scorable attempts for user 3 in the last 30 days: theta not updated",
    }


def test_score_rejects_a_bad_lookback(sqlite_url, tmp_path, clock):
    proc = score(sqlite_url, tmp_path, clock, "--user", "1", "--lookback-days", "0")
    assert proc.returncode == 2 and "must be >= 1" in proc.stderr


def test_an_unknown_student_is_an_error_not_a_noop(sqlite_url, tmp_path, clock):
    """The issue: a student who is not in users answered ``noop`` with exit 0."""
    seed_scoring(sqlite_url, clock.now)
    proc = score(sqlite_url, tmp_path, clock, "--user", "99")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        f"seedtest: error: no student 99 in the warehouse SQLite file "
        f"{sqlite_url.removeprefix('sqlite:///')}"
    )
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(select(s.mirt_ability)).first() is None
    engine.dispose()


@pytest.mark.parametrize(
    ("user", "problem"),
    [("", "empty"), ("   ", "whitespace only"), (" u-000001", "leading or trailing whitespace")],
)
def test_a_user_id_that_is_not_an_id_is_a_one_line_usage_error(
    sqlite_url, tmp_path, clock, user, problem
):
    seed_scoring(sqlite_url, clock.now)
    proc = score(sqlite_url, tmp_path, clock, "--user", user)
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_error_line(proc)
    assert f"argument --user: not a student id ({problem}): {user!r}" in line
    assert "`seedtest score --help` for usage" in line
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(select(s.mirt_ability)).first() is None  # nothing scored
    engine.dispose()


#: Ids as the product writes them: each is taken as typed (no parsing, no normalising).
PRODUCT_IDS = [
    "u-000123",
    "test-user-123",
    "3f2b8c1e-9a4d-4e7b-b1c2-5d6e7f8a9b0c",
    "김민서-01",
]


@pytest.mark.parametrize("user", PRODUCT_IDS)
def test_a_product_text_id_is_scored_as_typed(sqlite_url, tmp_path, clock, user):
    seed_scoring(sqlite_url, clock.now)
    add_student_like(sqlite_url, user, "1")  # same answers as student "1"
    proc = score(sqlite_url, tmp_path, clock, "--user", user)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["status"] == "ok" and body["user_id"] == user
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        [row] = conn.execute(select(s.mirt_ability)).mappings().all()
    engine.dispose()
    assert (row["user_id"], row["source"], row["theta"]) == (user, "on_demand", body["theta"])
    # A near miss is another student: ids are compared exactly.
    proc = score(sqlite_url, tmp_path, clock, "--user", user.upper() + "x")
    assert proc.returncode == 3 and proc.stdout == ""
    assert f"no student {user.upper()}x in the warehouse" in one_error_line(proc)
