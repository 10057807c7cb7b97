"""Every job of the code location: asset jobs by domain, and the op job of online re-scores."""

import dagster as dg

from seedtest_assets.core.workloads import (
    IRT_POD,
    ONLINE_JOB_TAGS,
    REPORT_POD,
    batch_job_tags,
    heavy_job_tags,
)
from seedtest_assets.defs.attempts.assets import attempts
from seedtest_assets.defs.features_topic_daily.assets import features_topic_daily
from seedtest_assets.defs.item_quality.assets import item_quality
from seedtest_assets.defs.mirt_ability.assets import mirt_ability
from seedtest_assets.defs.mirt_ability.ops import rescore_students
from seedtest_assets.defs.mirt_item_params.assets import mirt_item_params
from seedtest_assets.defs.report_artifacts.assets import report_artifacts
from seedtest_assets.defs.topic_ability.assets import topic_ability
from seedtest_assets.defs.user_inactivity.assets import user_inactivity
from seedtest_assets.defs.weekly_kpi.assets import weekly_kpi

attempts_quality_job = dg.define_asset_job(
    "attempts_quality_job",
    selection=dg.AssetSelection.checks_for_assets(attempts.key),
    description="Whole-table checks of the raw attempts feed.",
    tags=batch_job_tags(),
)


features_topic_daily_job = dg.define_asset_job(
    "features_topic_daily_job", selection=[features_topic_daily], tags=batch_job_tags()
)


#: The Monday batch: calibration, its item quality, abilities (the weekly θ and the per-topic
#: θ the reports read), and the week's final KPIs (weekly_kpi depends on this module, so it
#: is selected by key).
mirt_weekly_job = dg.define_asset_job(
    "mirt_weekly_job",
    selection=dg.AssetSelection.assets(mirt_item_params, item_quality, mirt_ability, topic_ability)
    | dg.AssetSelection.assets("weekly_kpi"),
    tags=heavy_job_tags(IRT_POD),
)


#: The weekly batch alone (weekly partitions, inferred from the asset).
report_artifacts_job = dg.define_asset_job(
    "report_artifacts_job", selection=[report_artifacts], tags=heavy_job_tags(REPORT_POD)
)


user_inactivity_job = dg.define_asset_job(
    "user_inactivity_job", selection=[user_inactivity], tags=batch_job_tags()
)


weekly_kpi_job = dg.define_asset_job(
    "weekly_kpi_job", selection=[weekly_kpi], tags=batch_job_tags()
)


@dg.job(
    name="student_rescore_job",
    description="Online ability update for a batch of students (user ids in run config): "
    "one run per sensor tick, never one run per student.",
    tags=ONLINE_JOB_TAGS,
)
def student_rescore_job():
    rescore_students()


# ``student_rescore_job``: re-score a batch of students in ONE run (Dagster shell, ADR 0001).
#
# The ``new_attempts`` sensor requests one run per tick with the students whose sessions
# completed, ids in run config (``source: online``). An operator can launch it by hand from
# the launchpad for a handful of students (``source: on_demand``); for one student,
# materializing that student's ``student/mirt_ability`` partition does the same.
#
# Each scored student gets a versioned ``mirt_ability`` row and a ``student/mirt_ability``
# materialization of their ``users`` partition, recorded in bulk inside this run.
