"""The code location: every asset, check, job, schedule and resource of the platform."""

import os

import dagster as dg

from seedtest_assets.attempts.assets import (
    attempts,
    attempts_quality_job,
    attempts_quality_schedule,
    attempts_undatable_or_duplicate,
)
from seedtest_assets.attempts.sensors import new_attempts
from seedtest_assets.features_topic_daily.assets import (
    features_topic_daily,
    features_topic_daily_job,
)
from seedtest_assets.features_topic_daily.schedules import features_topic_daily_schedule
from seedtest_assets.mirt_ability.assets import (
    mirt_ability,
    mirt_weekly_job,
    student_mirt_ability,
)
from seedtest_assets.mirt_ability.jobs import student_rescore_job
from seedtest_assets.mirt_item_params.assets import mirt_item_params
from seedtest_assets.mirt_item_params.schedules import mirt_weekly_schedule
from seedtest_assets.report_artifacts.assets import (
    report_artifacts,
    report_artifacts_job,
    student_report_artifacts,
)
from seedtest_assets.report_artifacts.schedules import report_artifacts_schedule
from seedtest_assets.resources import report_store_from_env, warehouse_from_env
from seedtest_assets.user_inactivity.assets import user_inactivity, user_inactivity_job
from seedtest_assets.user_inactivity.schedules import user_inactivity_schedule
from seedtest_assets.weekly_kpi.assets import weekly_kpi, weekly_kpi_job
from seedtest_assets.weekly_kpi.schedules import weekly_kpi_schedule

EXECUTORS = ("multiprocess", "k8s")


def executor_from_env() -> dg.ExecutorDefinition | None:
    """``SEEDTEST_EXECUTOR``: ``multiprocess`` (default: every step in the run's process tree)
    or ``k8s`` (each step in its own pod, sized by the asset's ``dagster-k8s/config`` op tags;
    for clusters where one pod is not enough). Only the k8s choice imports dagster-k8s."""
    choice = os.environ.get("SEEDTEST_EXECUTOR", "").strip().lower() or "multiprocess"
    if choice not in EXECUTORS:
        raise ValueError(f"SEEDTEST_EXECUTOR must be one of {EXECUTORS}, not {choice!r}")
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None  # Dagster's default: multiprocess


defs = dg.Definitions(
    assets=[
        attempts,
        features_topic_daily,
        user_inactivity,
        mirt_item_params,
        mirt_ability,
        student_mirt_ability,
        weekly_kpi,
        report_artifacts,
        student_report_artifacts,
    ],
    asset_checks=[attempts_undatable_or_duplicate],
    jobs=[
        attempts_quality_job,
        features_topic_daily_job,
        user_inactivity_job,
        mirt_weekly_job,
        weekly_kpi_job,
        student_rescore_job,
        report_artifacts_job,
    ],
    sensors=[new_attempts],
    schedules=[
        attempts_quality_schedule,
        features_topic_daily_schedule,
        user_inactivity_schedule,
        mirt_weekly_schedule,
        weekly_kpi_schedule,
        report_artifacts_schedule,
    ],
    resources={"warehouse": warehouse_from_env(), "report_store": report_store_from_env()},
    executor=executor_from_env(),
)
