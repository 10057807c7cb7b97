"""The demo command end to end at a small size, as `make demo` runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

SEEDTEST = Path(sys.executable).with_name("seedtest")


@pytest.mark.slow
def test_demo_materializes_everything_and_summarizes(tmp_path):
    env = {**os.environ, "SEEDTEST_HOME": str(tmp_path)}
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/never_touched"  # must be ignored
    proc = subprocess.run(
        [str(SEEDTEST), "demo", "--users", "200", "--weeks", "2", "--seed", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "features_topic_daily.attempts_reconcile" in out
    assert re.search(r"features_topic_daily\.attempts_reconcile\s+passed", out)
    assert re.search(r"features_topic_daily\.no_rejected_attempts\s+FAILED \(WARN\)", out)
    for reason in ("unknown_user", "null_field", "duplicate_id"):
        assert re.search(rf"{reason}\s+1\s+planted 1", out), reason
    rows = dict(re.findall(r"^\s+(\w+)\s+([\d,]+)$", out, flags=re.M))
    assert int(rows["attempts"].replace(",", "")) > 1000
    assert int(rows["features_topic_daily"].replace(",", "")) > 0
    assert (tmp_path / "warehouse.db").exists()
    assert re.search(r"mirt_item_params\.converged\s+passed", out)
    # Estimates are compared with the generator's truth and printed.
    theta = re.search(r"theta \(students\)\s+n=\s*([\d,]+)\s+corr (\S+)\s+RMSE (\S+)", out)
    assert theta, out[-2000:]
    assert int(theta.group(1).replace(",", "")) > 100 and float(theta.group(2)) > 0.7

    # KPIs are computed, checked and summarized; reports are rendered and recorded.
    assert re.search(r"weekly_kpi\.active_students_covered\s+passed", out)
    assert re.search(r"S churn risk: ROC AUC (\d\.\d{3}|nan)", out)  # nan: 2 weeks too few
    reports = re.search(r"weekly reports, week (\S+): ([\d,]+) students", out)
    assert reports and int(reports.group(2).replace(",", "")) > 0, out[-2000:]
    assert re.search(r"pdf\s+[\d,]+ files", out) and re.search(r"html\s+[\d,]+ files", out)
    pdfs = list((tmp_path / "reports" / reports.group(1)).glob("*.pdf"))
    assert pdfs and pdfs[0].read_bytes().startswith(b"%PDF")

    # The runs are in the persistent instance, so the UI shows them afterwards.
    os.environ["DAGSTER_HOME"] = str(tmp_path / "dagster")
    try:
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()
            # 3 daily-side runs + one weekly IRT+KPI run per week (2 weeks) + 1 report run
            assert len(runs) == 6 and all(r.is_success for r in runs)
    finally:
        del os.environ["DAGSTER_HOME"]
