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
                    "user_id": "2",
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
        "user_id": "3",  # the text id, as stored
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
    proc = theta(url, tmp_path, "--user", "01")  # not student "1": ids are text, not numbers
    assert proc.returncode == 3
    assert "no student 01 in the warehouse" in one_error_line(proc) and proc.stdout == ""

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


#: Ids as the product writes them (``u-…`` as the generator, a test account, a UUID).
PRODUCT_IDS = ["u-000123", "test-user-123", "3f2b8c1e-9a4d-4e7b-b1c2-5d6e7f8a9b0c"]


@pytest.mark.parametrize("user", PRODUCT_IDS)
def test_a_product_text_id_reads_its_theta(url, tmp_path, user):
    engine = make_engine(url)
    with transaction(engine) as conn:
        conn.execute(
            s.users.insert(),
            [{"user_id": user, "org_id": "1", "display_name": "새 학생", "created_at": WEEK}],
        )
        conn.execute(
            s.mirt_ability.insert(),
            [
                {
                    "user_id": user,
                    "week_start": WEEK,
                    "theta": 1.25,
                    "se": 0.2,
                    "model": "2PL",
                    "version": "v",
                    "source": "weekly",
                    "n_responses": 30,
                    "fitted_at": datetime(2026, 3, 9, 3, 10),
                }
            ],
        )
    engine.dispose()
    proc = theta(url, tmp_path, "--user", user, "--week", WEEK.isoformat())
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert (body["user_id"], body["theta"], body["source"]) == (user, 1.25, "weekly")


@pytest.mark.parametrize(("user", "problem"), [("", "empty"), ("\t", "whitespace only")])
def test_a_blank_user_id_is_a_one_line_usage_error(url, tmp_path, user, problem):
    proc = theta(url, tmp_path, "--user", user)
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_error_line(proc)
    assert f"argument --user: not a student id ({problem}): {user!r}" in line


def test_the_no_theta_hint_quotes_an_id_for_the_shell(warehouse_url, tmp_path):
    from seedtest_assets_tests.factories import seed_reference

    seed_reference(warehouse_url, n_users=1)
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        conn.execute(
            s.users.insert(),
            [
                {
                    "user_id": "Kim Min-seo",
                    "org_id": "1",
                    "display_name": "김민서",
                    "created_at": WEEK,
                }
            ],
        )
    engine.dispose()
    proc = theta(warehouse_url, tmp_path, "--user", "Kim Min-seo")
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "student Kim Min-seo has no theta yet" in line
    assert "`seedtest score --user 'Kim Min-seo'` scores them now" in line
