"""The original system's runbook SQL (``../shared/seeds/``), verbatim, with its SQLite forms.

The seed guides verify a deployment by reading our tables with these queries; our tables are
their contract. ``POSTGRES`` holds each query exactly as a guide prints it (only the one literal
user id ``'user123'`` is a parameter, since it names a student of the guide's own data);
``SQLITE`` the same query for the embedded warehouse (``json_extract``, ``date('now', ...)``,
``CAST``), as docs/runbook.md gives them to analysts. Both are data of the tests, never built
from user input.
"""

from __future__ import annotations

#: name -> (seed guide, PostgreSQL text)
POSTGRES: dict[str, tuple[str, str]] = {
    "weekly_kpi": (
        "001 (1-2단계: KPI 및 피처 검증)",
        """
SELECT 
    user_id, 
    week_start,
    kpis->>'I_t' AS improvement,
    kpis->>'E_t' AS efficiency,
    kpis->>'P' AS goal_prob,
    kpis->>'S' AS churn_risk,
    updated_at
FROM weekly_kpi
WHERE week_start >= CURRENT_DATE - INTERVAL '7 days'
ORDER BY updated_at DESC
LIMIT 10;
""",
    ),
    "features_topic_daily": (
        "001 (1-2단계: KPI 및 피처 검증)",
        """
SELECT 
    user_id, 
    topic_id, 
    date,
    attempts, 
    correct,
    ROUND((correct::float / NULLIF(attempts, 0) * 100)::numeric, 1) AS accuracy_pct,
    rt_median,
    hints,
    improvement
FROM features_topic_daily
WHERE date >= CURRENT_DATE - INTERVAL '7 days'
ORDER BY date DESC, user_id
LIMIT 20;
""",
    ),
    "mirt_item_params": (
        "001 (3단계: IRT 캘리브레이션 검증)",
        """
SELECT 
    item_id, 
    model,
    params->>'a' AS discrimination,
    params->>'b' AS difficulty,
    params->>'c' AS guessing,
    fitted_at
FROM mirt_item_params
ORDER BY fitted_at DESC
LIMIT 20;
""",
    ),
    "mirt_ability": (
        "001 (3단계: IRT 캘리브레이션 검증)",
        """
SELECT 
    user_id, 
    theta, 
    se, 
    model, 
    version,
    fitted_at
FROM mirt_ability
ORDER BY fitted_at DESC
LIMIT 20;
""",
    ),
    "theta_last_hour": (
        "001/003 (4단계: θ 온라인 업데이트 검증)",
        """
SELECT 
    user_id, 
    theta, 
    se, 
    version,
    fitted_at
FROM mirt_ability
WHERE fitted_at >= NOW() - INTERVAL '1 hour'
ORDER BY fitted_at DESC;
""",
    ),
    "theta_updates_per_day": (
        "001 (4단계: θ 온라인 업데이트 검증)",
        """
SELECT 
    DATE(fitted_at) AS date, 
    COUNT(*) AS updates,
    COUNT(DISTINCT user_id) AS unique_users
FROM mirt_ability
WHERE fitted_at >= NOW() - INTERVAL '7 days'
GROUP BY DATE(fitted_at)
ORDER BY date DESC;
""",
    ),
    "reports_latest": (
        "001 (5단계: 리포트 생성 검증)",
        """
SELECT 
    user_id, 
    week_start, 
    format, 
    url, 
    generated_at,
    file_size_bytes
FROM report_artifacts
ORDER BY generated_at DESC
LIMIT 10;
""",
    ),
    "report_coverage": (
        "001 (5단계: 리포트 생성 검증)",
        """
SELECT 
    week_start, 
    COUNT(DISTINCT user_id) AS users_with_report,
    COUNT(*) AS total_reports
FROM report_artifacts
WHERE generated_at >= NOW() - INTERVAL '30 days'
GROUP BY week_start
ORDER BY week_start DESC;
""",
    ),
    "report_weeks": (
        "000 (리포트 생성 확인)",
        """
SELECT 
    DATE_TRUNC('week', generated_at) AS week,
    COUNT(*) AS report_count,
    COUNT(DISTINCT user_id) AS unique_users
FROM report_artifacts
WHERE generated_at >= NOW() - INTERVAL '30 days'
GROUP BY DATE_TRUNC('week', generated_at)
ORDER BY week DESC;
""",
    ),
    "report_one_user": (
        "000 (특정 사용자 리포트 확인; the guide's 'user123' is a parameter)",
        """
SELECT user_id, week_start, format, url, generated_at
FROM report_artifacts
WHERE user_id = :user_id
ORDER BY generated_at DESC
LIMIT 10;
""",
    ),
    "kpis_raw": (
        "004 (데이터베이스 확인)",
        """
SELECT user_id, week_start, kpis, updated_at
FROM weekly_kpi
ORDER BY updated_at DESC
LIMIT 5;
""",
    ),
}

#: name -> the same query for SQLite (the embedded warehouse).
SQLITE: dict[str, str] = {
    "weekly_kpi": """
SELECT user_id, week_start,
    json_extract(kpis, '$.I_t') AS improvement,
    json_extract(kpis, '$.E_t') AS efficiency,
    json_extract(kpis, '$.P') AS goal_prob,
    json_extract(kpis, '$.S') AS churn_risk,
    updated_at
FROM weekly_kpi
WHERE week_start >= date('now', '-7 days')
ORDER BY updated_at DESC
LIMIT 10;
""",
    "features_topic_daily": """
SELECT user_id, topic_id, date, attempts, correct,
    ROUND(CAST(correct AS REAL) / NULLIF(attempts, 0) * 100, 1) AS accuracy_pct,
    rt_median, hints, improvement
FROM features_topic_daily
WHERE date >= date('now', '-7 days')
ORDER BY date DESC, user_id
LIMIT 20;
""",
    "mirt_item_params": """
SELECT item_id, model,
    json_extract(params, '$.a') AS discrimination,
    json_extract(params, '$.b') AS difficulty,
    json_extract(params, '$.c') AS guessing,
    fitted_at
FROM mirt_item_params
ORDER BY fitted_at DESC
LIMIT 20;
""",
    "mirt_ability": """
SELECT user_id, theta, se, model, version, fitted_at
FROM mirt_ability
ORDER BY fitted_at DESC
LIMIT 20;
""",
    "theta_last_hour": """
SELECT user_id, theta, se, version, fitted_at
FROM mirt_ability
WHERE fitted_at >= datetime('now', '-1 hour')
ORDER BY fitted_at DESC;
""",
    "theta_updates_per_day": """
SELECT date(fitted_at) AS date, COUNT(*) AS updates, COUNT(DISTINCT user_id) AS unique_users
FROM mirt_ability
WHERE fitted_at >= datetime('now', '-7 days')
GROUP BY date(fitted_at)
ORDER BY date DESC;
""",
    "reports_latest": """
SELECT user_id, week_start, format, url, generated_at, file_size_bytes
FROM report_artifacts
ORDER BY generated_at DESC
LIMIT 10;
""",
    "report_coverage": """
SELECT week_start, COUNT(DISTINCT user_id) AS users_with_report, COUNT(*) AS total_reports
FROM report_artifacts
WHERE generated_at >= datetime('now', '-30 days')
GROUP BY week_start
ORDER BY week_start DESC;
""",
    # DATE_TRUNC('week', ...) is the Monday of the timestamp's ISO week.
    "report_weeks": """
SELECT date(generated_at, '-' || ((CAST(strftime('%w', generated_at) AS INTEGER) + 6) % 7)
            || ' days') AS week,
    COUNT(*) AS report_count, COUNT(DISTINCT user_id) AS unique_users
FROM report_artifacts
WHERE generated_at >= datetime('now', '-30 days')
GROUP BY week
ORDER BY week DESC;
""",
    "report_one_user": """
SELECT user_id, week_start, format, url, generated_at
FROM report_artifacts
WHERE user_id = :user_id
ORDER BY generated_at DESC
LIMIT 10;
""",
    "kpis_raw": """
SELECT user_id, week_start, kpis, updated_at
FROM weekly_kpi
ORDER BY updated_at DESC
LIMIT 5;
""",
}
