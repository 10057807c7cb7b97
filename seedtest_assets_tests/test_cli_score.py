"""``seedtest score --user U``: the original update-theta answer, from the command line.

The command runs in a subprocess with the test's frozen clock (``SEEDTEST_FROZEN_NOW``), so
the data seeded "1 day ago" and the command's "now" are the same instant's.
"""

import json
from datetime import datetime

from sqlalchemy import select

from seedtest_assets.core.warehouse import make_engine
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.online_factories import seed_scoring
from seedtest_assets_tests.test_cli import run_cli


def score(url: str, tmp_path, clock, *args: str):
    env = {"DATABASE_URL": url, "SEEDTEST_HOME": str(tmp_path), **clock.env()}
    return run_cli("score", *args, env=env)


def test_score_prints_the_original_fields_and_writes_an_on_demand_row(sqlite_url, tmp_path, clock):
    version = seed_scoring(sqlite_url, clock.now)
    proc = score(sqlite_url, tmp_path, clock, "--user", "1")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert list(body) == ["status", "user_id", "theta", "se", "model", "version", "updated_at"]
    assert body["status"] == "ok" and body["user_id"] == 1
    assert body["model"] == "2PL" and body["version"] == version
    assert -1.5 < body["theta"] < 1.5 and 0 < body["se"] < 1
    updated = datetime.fromisoformat(body["updated_at"].removesuffix("Z"))
    assert updated == clock.now  # the subprocess honoured SEEDTEST_FROZEN_NOW
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        row = conn.execute(select(s.mirt_ability)).mappings().one()
    engine.dispose()
    assert (row["user_id"], row["source"], row["theta"]) == (1, "on_demand", body["theta"])


def test_score_without_attempts_is_a_noop_not_an_error(sqlite_url, tmp_path, clock):
    seed_scoring(sqlite_url, clock.now)
    proc = score(sqlite_url, tmp_path, clock, "--user", "3", "--lookback-days", "30")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body == {
        "status": "noop",
        "user_id": 3,
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


def test_a_user_id_that_is_not_an_id_is_a_usage_error(sqlite_url, tmp_path, clock):
    proc = score(sqlite_url, tmp_path, clock, "--user", "abc")
    assert proc.returncode == 2 and "not a student id" in proc.stderr
