"""The calibration's checks: plausible parameter ranges and one student's share of the window."""

import dagster as dg

from seedtest_assets.core.mirt_item_params.pipeline import (
    CalibrationRun,
)

#: Bounds outside which an unflagged item's parameters are not believable. Checked on what
#: EM estimates (slope a, intercept d, guessing c), not on b = -d/a, which is legitimately
#: large for flat items (a = 0.3 and b = -5.6 on 29 responses is noise, not a failure).
PLAUSIBLE = {"a": (0.05, 4.0), "d": (-10.0, 10.0), "c": (0.0, 0.5)}


def student_share_check(run: CalibrationRun) -> dg.AssetCheckResult:
    """WARN when the window needed the cap or held quarantined (flooded) student-days."""
    cap, days = run.student_cap, run.student_days
    return dg.AssetCheckResult(
        check_name="student_share",
        passed=not cap.applied and days.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            **cap.metadata(),
            "sample_capped_students": cap.samples(),
            "quarantined_student_days": days.height,
            "sample_quarantined_student_days": [
                f"student {r['user_id']} on {r['day']}: {r['attempts']} attempts, "
                f"{r['study_ms'] / 3_600_000:.1f} h"
                for r in days.head(10).iter_rows(named=True)
            ],
        },
    )
