"""``seedtest theta --user U [--week W]``: a student's stored θ, read-only, on both backends."""

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from seedtest_assets.core.warehouse import make_engine, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.report_helpers import WEEK, seed_week
from seedtest_assets_tests.test_cli import one_error_line, run_cli

FIELDS = [
    "status",
    "user_id",
    "theta",
    "se",
    "model",
    "version",
    "week_start",
    "source",
    "updated_at",
]


def theta(url: str, tmp_path, *args: str):
    home = tmp_path / "home"
    proc = run_cli("theta", *args, env={"DATABASE_URL": url, "SEEDTEST_HOME": str(home)})
    assert not home.exists()  # read-only: no SEEDTEST_HOME made
    return proc


def ability_rows(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(s.mirt_ability)).scalar_one()
    engine.dispose()
    return n


@pytest.fixture
def url(warehouse_url) -> str:
    """seed_week (weekly θ of WEEK and the 2 weeks before) + a newer on-demand row of user 2."""
    seed_week(warehouse_url)
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        conn.execute(
            s.mirt_ability.insert(),
            [
                {
                    "user_id": 2,
                    "week_start": WEEK + timedelta(weeks=1),
                    "theta": 0.77,
                    "se": 0.25,
                    "model": "2PL",
                    "version": "2PL@2026-03-02",
                    "source": "on_demand",
                    "n_responses": 18,
                    "fitted_at": datetime(2026, 3, 10, 12, 30, 5),
                }
            ],
        )
    engine.dispose()
    return warehouse_url


def test_the_weekly_theta_of_a_week(url, tmp_path):
    before = ability_rows(url)
    proc = theta(url, tmp_path, "--user", "3", "--week", (WEEK - timedelta(weeks=1)).isoformat())
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert list(body) == FIELDS
    assert body == {
        "status": "ok",
        "user_id": 3,
        "theta": pytest.approx(0.2),  # seed_week: 0.1 * user - 0.1 * weeks back
        "se": 0.3,
        "model": "2PL",
        "version": "v",
        "week_start": (WEEK - timedelta(weeks=1)).isoformat(),
        "source": "weekly",
        "updated_at": "2026-03-09T03:10:00Z",
    }
    assert ability_rows(url) == before  # nothing written


def test_without_week_the_newest_row_of_any_source(url, tmp_path):
    proc = theta(url, tmp_path, "--user", "2")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert (body["theta"], body["se"], body["source"]) == (0.77, 0.25, "on_demand")
    assert body["updated_at"] == "2026-03-10T12:30:05Z"
    assert body["week_start"] == (WEEK + timedelta(weeks=1)).isoformat()
    # ...while that week's weekly row is still the batch's
    proc = theta(url, tmp_path, "--user", "2", "--week", WEEK.isoformat())
    assert json.loads(proc.stdout)["source"] == "weekly"


def test_unknown_student_and_missing_row_are_clear_errors(url, tmp_path):
    proc = theta(url, tmp_path, "--user", "999")
    assert proc.returncode == 3
    assert "no student 999 in the warehouse" in one_error_line(proc) and proc.stdout == ""

    proc = theta(url, tmp_path, "--user", "1", "--week", "2026-01-05")
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "student 1 has no weekly theta for the week 2026-01-05" in line


def test_a_student_never_scored(warehouse_url, tmp_path):
    from seedtest_assets_tests.factories import seed_reference

    seed_reference(warehouse_url, n_users=2)
    proc = theta(warehouse_url, tmp_path, "--user", "2")
    assert proc.returncode == 3
    assert "student 2 has no theta yet" in one_error_line(proc)


def test_week_must_be_a_monday(url, tmp_path):
    proc = theta(url, tmp_path, "--user", "1", "--week", "2026-03-04")
    assert proc.returncode == 2
    assert "2026-03-04 is a Wednesday" in proc.stderr and "2026-03-02" in proc.stderr
