"""``seedtest report --week W``: a week's reports through Dagster, from the console script.

Each test runs the real ``seedtest`` process on a small seeded warehouse (``seed_week``:
students "1"-"5" and "100" active in the week, student "6" only the week before) with its own
``SEEDTEST_HOME`` (so the Dagster instance is ``$SEEDTEST_HOME/dagster`` unless the test sets
``DAGSTER_HOME``), then looks at the files, the ``report_artifacts`` rows and the runs of
that Dagster instance.
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from seedtest_assets.core.report_artifacts.store import encode_user_id
from seedtest_assets.core.warehouse import make_engine, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.factories import attempts_frame, insert_attempts
from seedtest_assets_tests.report_helpers import WEEK, seed_week
from seedtest_assets_tests.test_cli import one_error_line, run_cli

#: seed_week: answers in WEEK; text ids, in text order (the order of the reports and rows).
ACTIVE = ["1", "100", "2", "3", "4", "5"]


@pytest.fixture
def url(sqlite_url) -> str:
    seed_week(sqlite_url)
    return sqlite_url


def report(url: str, home: Path, *args: str, **env: str | None):
    """``seedtest report --week WEEK ARGS`` with a fresh environment (REPORT_FORMAT unset)."""
    base = {
        "DATABASE_URL": url,
        "SEEDTEST_HOME": str(home),
        "DAGSTER_HOME": None,
        "REPORT_FORMAT": None,
        "MAX_USERS": None,
        "S3_BUCKET": None,
    }
    return run_cli("report", "--week", WEEK.isoformat(), *args, env={**base, **env})


def rows(url: str) -> list[tuple[str, str, str]]:
    t = s.report_artifacts
    engine = make_engine(url)
    with engine.connect() as conn:
        out = conn.execute(
            select(t.c.user_id, t.c.format, t.c.url).order_by(t.c.user_id, t.c.format)
        ).all()
    engine.dispose()
    return [tuple(r) for r in out]


def runs(dagster_home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return list(instance.get_runs())


def run_id_of(proc) -> str:
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("run "))
    return line.split()[1]


def expected_paths(home: Path, users, formats=("html", "pdf")) -> list[str]:
    folder = home / "reports" / WEEK.isoformat()
    return [str(folder / f"{u}.{f}") for u in users for f in formats]


def test_report_writes_files_and_rows_prints_paths_and_shows_in_dagster(warehouse_url, tmp_path):
    url = warehouse_url  # SQLite and PostgreSQL
    seed_week(url)
    home = tmp_path / "home"
    proc = report(url, home)
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.splitlines()
    assert paths == expected_paths(home, ACTIVE)
    assert all(Path(p).stat().st_size > 0 for p in paths)
    stored = rows(url)
    assert [(u, f) for u, f, _ in stored] == [(u, f) for u in ACTIVE for f in ("html", "pdf")]
    assert sorted(Path(u.removeprefix("file://")).as_posix() for _, _, u in stored) == sorted(paths)
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"week {WEEK}: 6 students, 12 html+pdf files")
    # The run is in the Dagster instance ($SEEDTEST_HOME/dagster), with its partition.
    (run,) = runs(home / "dagster")
    assert run.run_id == run_id_of(proc)
    assert run.job_name == "report_artifacts_job" and run.is_success
    assert run.tags["dagster/partition"] == WEEK.isoformat()
    assert run.tags["seedtest/launched_by"] == "seedtest report"


def test_report_format_env_and_named_inactive_student(url, tmp_path):
    home = tmp_path / "home"
    # Student 6 did not practise in WEEK: named, they get a report anyway.
    proc = report(url, home, "--user", "6", "--user", "2", REPORT_FORMAT="html")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_paths(home, ["2", "6"], ["html"])
    assert [(u, f) for u, f, _ in rows(url)] == [("2", "html"), ("6", "html")]
    # --format wins over REPORT_FORMAT; only this run's files are listed.
    proc = report(url, home, "--user", "2", "--format", "pdf", REPORT_FORMAT="html")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_paths(home, ["2"], ["pdf"])
    # Organisation and cap: org 1's active students, lowest ids (as text) first.
    proc = report(url, home, "--org", "1", "--max-users", "2", REPORT_FORMAT="pdf")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_paths(home, ["1", "2"], ["pdf"])
    assert "3 more students cut by --max-users" in proc.stderr
    assert len(runs(home / "dagster")) == 3


def test_bad_report_format_and_bad_weeks_are_rejected_before_any_run(url, tmp_path):
    home = tmp_path / "home"
    proc = report(url, home, REPORT_FORMAT="docx")
    assert proc.returncode == 2
    assert "REPORT_FORMAT must be one of html, pdf" in one_error_line(proc)

    proc = run_cli(
        "report", "--week", "2026-03-03", env={"DATABASE_URL": url, "SEEDTEST_HOME": str(home)}
    )
    assert proc.returncode == 2
    assert "2026-03-03 is a Tuesday: weeks are keyed by their Monday (that week: 2026-03-02)" in (
        proc.stderr
    )

    proc = run_cli(
        "report", "--week", "2099-03-02", env={"DATABASE_URL": url, "SEEDTEST_HOME": str(home)}
    )
    assert proc.returncode == 2
    assert "no weekly partition 2099-03-02" in one_error_line(proc)

    proc = report(url, home, "--user", "42")
    assert proc.returncode == 3
    assert "no student 42 in the warehouse" in one_error_line(proc)
    proc = report(url, home, "--org", "org-1")  # not organisation "1"
    assert proc.returncode == 3
    assert "no student in organisation org-1 in the warehouse" in one_error_line(proc)
    for option, refusal in (("--user", "not a student id"), ("--org", "not an organisation id")):
        for blank, problem in (("", "empty"), ("  ", "whitespace only")):
            proc = report(url, home, option, blank)
            assert proc.returncode == 2
            line = one_error_line(proc)
            assert f"argument {option}: {refusal} ({problem}): {blank!r}" in line
    assert not home.exists() and rows(url) == []


def test_dry_run_renders_stores_nothing_and_says_where_files_would_go(url, tmp_path):
    home = tmp_path / "home"
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    proc = report(url, home, "--dry-run", "--format", "pdf", DAGSTER_HOME=str(dagster_home))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_paths(home, ACTIVE, ["pdf"])
    assert "dry run" in proc.stderr and "nothing stored" in proc.stderr
    assert rows(url) == [] and not (home / "reports").exists()
    assert not (home / "dagster").exists()  # DAGSTER_HOME was set: that instance has the run
    (run,) = runs(dagster_home)
    assert run.is_success and run.tags["dagster/partition"] == WEEK.isoformat()


def test_a_failed_run_exits_1_with_its_message_and_lists_what_was_stored(url, tmp_path):
    home = tmp_path / "home"
    # A directory where student 3's PDF should go: that one write fails.
    (home / "reports" / WEEK.isoformat() / "3.pdf").mkdir(parents=True)
    proc = report(url, home, "--format", "pdf")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == expected_paths(home, ["1", "100", "2", "4", "5"], ["pdf"])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"seedtest: error: report run {run_id_of(proc)} failed: ")
    assert "1 of 6 students' reports failed" in last and "Failed: 3." in last
    assert "error: report of student 3 (pdf) failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    (run,) = runs(home / "dagster")
    assert run.is_failure


#: A product organisation and its students, ids as the product writes them.
PRODUCT_ORG = "org-7f3a"
PRODUCT_USERS = ["test-user-123", "u-000123", "3f2b8c1e-9a4d-4e7b-b1c2-5d6e7f8a9b0c"]


def add_product_students(url: str) -> None:
    """``PRODUCT_USERS`` in ``PRODUCT_ORG``, each with a few answers in WEEK."""
    engine = make_engine(url)
    with transaction(engine) as conn:
        conn.execute(s.organizations.insert(), [{"org_id": PRODUCT_ORG, "name": "한빛 온라인"}])
        conn.execute(
            s.users.insert(),
            [
                {
                    "user_id": u,
                    "org_id": PRODUCT_ORG,
                    "display_name": f"학생 {i}",
                    "created_at": datetime(2026, 1, 1),
                }
                for i, u in enumerate(PRODUCT_USERS)
            ],
        )
    engine.dispose()
    rows = [
        {
            "id": 10_000 + 10 * i + j,
            "user_id": u,
            "session_id": f"s-{u}",
            "item_id": "100",
            "topic_id": "1",
            "is_correct": j % 2 == 0,
            "attempted_at": datetime.combine(WEEK, time(10, j)),
        }
        for i, u in enumerate(PRODUCT_USERS)
        for j in range(3)
    ]
    insert_attempts(url, attempts_frame(rows))


def test_product_text_ids_select_students_and_organisations(warehouse_url, tmp_path):
    url = warehouse_url  # SQLite and PostgreSQL
    seed_week(url)
    add_product_students(url)
    home = tmp_path / "home"
    proc = report(url, home, "--org", PRODUCT_ORG, "--format", "html")
    assert proc.returncode == 0, proc.stderr
    ordered = sorted(PRODUCT_USERS)  # text order: the UUID, "test-user-123", "u-000123"
    assert proc.stdout.splitlines() == expected_paths(
        home, [encode_user_id(u) for u in ordered], ["html"]
    )
    assert [(u, f) for u, f, _ in rows(url)] == [(u, "html") for u in ordered]
    # Named by their ids as typed, with one of seed_week's students; --org narrows --user.
    proc = report(url, home, "--user", "test-user-123", "--user", "2", "--format", "pdf")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_paths(home, ["2", "test-user-123"], ["pdf"])
    proc = report(
        url, home, "--user", "test-user-123", "--user", "2", "--org", PRODUCT_ORG, "--dry-run"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_paths(home, ["test-user-123"])
    # Ids are exact: another case is another (here: no) student.
    proc = report(url, home, "--user", "TEST-USER-123")
    assert proc.returncode == 3
    assert "no student TEST-USER-123 in the warehouse" in one_error_line(proc)
