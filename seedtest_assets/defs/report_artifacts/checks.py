"""The reports' read-back checks: every stored report shows the KPIs and the θ of the warehouse."""

import dagster as dg

from seedtest_assets.core.report_artifacts.verify import MAX_LISTED, Verification

REPORT_CHECKS = {
    "kpis_shown": "Every KPI (I_t, E_t, P, S) that is a number in the student's weekly_kpi row "
    "appears as its sentence in the stored report (HTML read back from the store, for up to "
    "200 students of the batch); never 'not computed' when the value exists.",
    "theta_shown": "The report's θ headline equals the week's mirt_ability row (θ ± SE): one θ "
    "per student-week.",
}


def report_check_results(v: Verification) -> list[dg.AssetCheckResult]:
    """The two read-back checks of a batch (``verify.verify_reports``)."""

    def result(name: str, found: list[tuple[int, str]], compared: int):
        problems = [*v.read_problems, *found]  # an unreadable report shows nothing
        return dg.AssetCheckResult(
            check_name=name,
            passed=not problems and not v.store_down,
            description=v.store_down or None,
            metadata={
                "reports_read": v.checked,
                "compared": compared,
                "problems": len(problems),
                "read_errors": len(v.read_problems),
                "reports_not_read": v.not_read,
                "store_judged_down": bool(v.store_down),
                "examples": dg.MetadataValue.json(
                    [{"user_id": str(u), "problem": p} for u, p in problems[:MAX_LISTED]]
                ),
            },
        )

    return [
        result("kpis_shown", v.kpi_problems, v.with_kpis),
        result("theta_shown", v.theta_problems, v.with_theta),
    ]
