"""The demo command end to end at a small size, as `make demo` runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

SEEDTEST = Path(sys.executable).with_name("seedtest")


@pytest.mark.slow
def test_demo_materializes_everything_and_summarizes(tmp_path):
    env = {**os.environ, "SEEDTEST_HOME": str(tmp_path)}
    # Must be ignored, and said so (without the password).
    env["DATABASE_URL"] = "postgresql://nobody:s3cret@127.0.0.1:1/never_touched"
    env.pop("SEEDTEST_PARTITIONS_START", None)  # the demo's partitions follow its data
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
    for reason in ("unknown_user", "null_field", "bad_id", "duplicate_id"):
        assert re.search(rf"{reason}\s+1\s+planted 1", out), reason
    rows = dict(re.findall(r"^\s+(\w+)\s+([\d,]+)$", out, flags=re.M))
    assert int(rows["attempts"].replace(",", "")) > 1000
    assert int(rows["features_topic_daily"].replace(",", "")) > 0
    assert (tmp_path / "warehouse.db").exists()
    assert re.search(r"mirt_item_params\.converged\s+passed", out)
    assert "DATABASE_URL is set" in out and "s3cret" not in out + proc.stderr
    # The expected WARN failures say why, in one line each.
    assert re.search(r"no_rejected_attempts\s+FAILED \(WARN\)\n\s+expected: the 6 planted", out)

    # Each figure against its floor; never a bare nan, always why a figure is missing.
    assert "nan" not in out.lower().replace("nanum", "")
    theta = re.search(r"student theta, week \S+\s+(\d\.\d{3})\s+corr >= 0.85\s+(PASS|FAIL)", out)
    assert theta and float(theta.group(1)) > 0.7, out[-2500:]
    assert theta.group(2) == ("PASS" if float(theta.group(1)) >= 0.85 else "FAIL")
    # 2 weeks: no week has 3 weeks of history, so the KPIs are not judged, and it says why.
    assert re.search(r"S churn risk: ROC AUC\s+n/a\s+\(the KPIs are judged on weeks with 3", out)
    assert re.search(r"verdict: (GOOD|BAD): \d of \d figures meet their floors", out)

    # The week's item quality: judged, summarized, its item-bank page written.
    iq = re.search(r"item quality, week (\S+) \(([\d,]+) items of the calibration\)", out)
    assert iq and int(iq.group(2).replace(",", "")) > 0, out[-3000:]
    assert re.search(r"item_quality\.misfit_within_chance\s+(passed|FAILED \(WARN\))", out)
    # 200 students in 2 organisations: under the DIF floor, and the line says so.
    assert re.search(r"DIF across organisations: not tested \(no two organisations with 200", out)
    page = tmp_path / "reports" / "item_bank" / iq.group(1) / "2PL.html"
    assert "Item bank: the week" in page.read_text("utf-8")

    # KPIs are computed, checked and summarized; reports are rendered, recorded, read back.
    assert re.search(r"weekly_kpi\.active_students_covered\s+passed", out)
    assert re.search(r"report_artifacts\.kpis_shown\s+passed", out)
    reports = re.search(r"weekly reports, week (\S+): ([\d,]+) students", out)
    assert reports and int(reports.group(2).replace(",", "")) > 0, out[-2000:]
    assert re.search(r"pdf\s+[\d,]+ files", out) and re.search(r"html\s+[\d,]+ files", out)
    read_back = re.search(r"read back: ([\d,]+) reports; the 4 KPIs shown in all ([\d,]+)", out)
    assert read_back and read_back.group(1) == reports.group(2), out[-2000:]
    assert int(read_back.group(2).replace(",", "")) > 0
    pdfs = list((tmp_path / "reports" / reports.group(1)).glob("*.pdf"))
    assert pdfs and pdfs[0].read_bytes().startswith(b"%PDF")

    # The partitions begin with the data (for `make ui` too, through the recorded day).
    first = (tmp_path / "partitions_start").read_text().strip()
    probe = subprocess.run(
        [sys.executable, "-c", "from seedtest_assets.defs import partitions as p; "
         "print(p.weekly.get_first_partition_key(), p.daily.get_first_partition_key())"],
        env={k: v for k, v in env.items() if k != "DATABASE_URL"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.split() == [first, first]

    # The runs are in the persistent instance, so the UI shows them afterwards.
    os.environ["DAGSTER_HOME"] = str(tmp_path / "dagster")
    try:
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()
            # 3 daily-side runs + one weekly IRT+KPI run per week (2 weeks) + 1 report run
            assert len(runs) == 6 and all(r.is_success for r in runs)
    finally:
        del os.environ["DAGSTER_HOME"]


def test_the_dif_line_counts_the_planted_items_found_and_the_others():
    from seedtest_assets.demo import dif_summary

    rows = pl.DataFrame(
        {
            "item_id": ["i-1", "i-2", "i-3", "i-4", "i-5"],
            "dif_p": [1e-9, 0.5, 1e-7, 0.01, None],
            "dif": [True, False, True, False, False],
            "dif_groups": [3, 3, 3, 3, None],
        }
    )
    planted = pl.DataFrame({"item_id": ["i-1", "i-1", "i-2", "i-5"], "org_id": ["o"] * 4})
    assert dif_summary(rows, planted) == (
        "DIF across 3 organisations: 2 of 4 items flagged; planted in 2 of the tested items, "
        "found 1 (i-1), 1 other item flagged"
    )
    assert dif_summary(rows.with_columns(dif_p=None), planted).startswith(
        "DIF across organisations: not tested"
    )
