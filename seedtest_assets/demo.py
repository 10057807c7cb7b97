"""The demo: synthetic data -> every asset materialized through Dagster -> a summary.

Runs on the embedded defaults only (SQLite warehouse and Dagster instance under
``SEEDTEST_HOME``, default ``./.seedtest``): it replaces the source tables it generates, so it
never touches a warehouse named by ``DATABASE_URL``. Afterwards ``make ui`` shows the same runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from seedtest_assets.core import settings
from seedtest_assets.core.attempts import rejects
from seedtest_assets.core.item_quality.assess import QualitySettings
from seedtest_assets.core.source import attempts
from seedtest_assets.core.user_inactivity import table as inactivity
from seedtest_assets.core.warehouse import make_engine, transaction, upgrade
from seedtest_assets.core.warehouse.db import delete_all, row_counts
from seedtest_assets.runs import failure_message, prepare_dagster_home

#: The tables the pipeline writes, emptied by a fresh demo.
OUTPUT_TABLES = (
    "features_topic_daily",
    "attempt_rejects",
    "user_inactivity",
    "weekly_kpi",
    "mirt_item_params",
    "item_quality",
    "mirt_ability",
    "topic_ability",
    "report_artifacts",
)

#: (job, partitioned?) in dependency order; later issues append their weekly jobs.
DEMO_JOBS: tuple[tuple[str, str | None], ...] = (
    ("attempts_quality_job", None),
    ("features_topic_daily_job", "daily"),
    ("user_inactivity_job", "daily"),
    ("mirt_weekly_job", "weekly"),  # one run per week, in order (calibration anchors on w-1)
    ("report_artifacts_job", "last_week"),  # the reports of the demo's last week
)


@dataclass
class CheckTally:
    passed: int = 0
    failed: list[str] = field(default_factory=list)


#: The demo's organisations hold about this many students each, so that the largest ones
#: reach item_quality's DIF floor (200 students in the window).
DEMO_STUDENTS_PER_ORG = 400
#: Items the demo's generator plants DIF in (across organisations), for item_quality to find.
DEMO_DIF_ITEMS = 4

#: WARN checks the demo fails on purpose, and why (plant_feed_errors plants the rows).
EXPECTED_WARNINGS = {
    "attempts.attempts_undatable_or_duplicate": "expected: the feed resent one attempt "
    "(the planted duplicate id)",
    "features_topic_daily.no_rejected_attempts": "expected: the 6 planted bad rows (unknown "
    "student, negative and 2.5-hour response times, a null answer, a blank session id, a "
    "resent attempt) were quarantined in attempt_rejects",
    "item_quality.no_dif_across_organisations": "expected: the generator planted DIF in "
    f"{DEMO_DIF_ITEMS} items across organisations (item quality, below)",
}


#: Items are judged on recovery from this median number of responses per item.
MIN_ITEM_RESPONSES = 150

#: KPIs are judged on weeks with this many weeks of history before them.
MATURE_WEEKS = 3


@dataclass
class Figure:
    """One validation figure against its floor; ``passed`` None = cannot be computed (why)."""

    name: str
    value: float | None
    floor: str
    passed: bool | None
    detail: str = ""
    why: str = ""
    digits: int = 3

    def line(self) -> str:
        if self.passed is None:
            return f"  {self.name:<34}n/a      ({self.why})"
        verdict = "PASS" if self.passed else "FAIL"
        value = f"{self.value:.{self.digits}f}"
        return f"  {self.name:<34}{value:>7}  {self.floor:<24}{verdict}  {self.detail}"


def plant_feed_errors(engine, start: date, weeks: int, seed: int) -> dict[str, int]:
    """Append a handful of malformed attempts, as a real feed has, to show the quarantine.

    Returns the planted rows per expected reject reason.
    """
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    with engine.connect() as conn:
        next_id = int(attempts.max_id(conn, integer_only=False) or 0) + 1
        template = attempts.first_rows(conn, 6)
    days = rng.integers(0, weeks * 7, size=len(template))
    rows = []
    for i, (base, day) in enumerate(zip(template, days, strict=True)):
        ts = base["attempted_at"].replace(
            year=start.year, month=start.month, day=start.day
        ) + timedelta(days=int(day))
        rows.append({**base, "id": next_id + i, "attempted_at": ts})
    rows[0]["user_id"] = "no-such-student"  # unknown_user
    rows[1]["response_time_ms"] = -250  # response_time_negative
    rows[2]["response_time_ms"] = 9_000_000  # response_time_absurd (2.5 h on one item)
    rows[3]["is_correct"] = None  # null_field
    rows[5]["session_id"] = "   "  # bad_id: a blank id no one could have meant
    rows.append(dict(rows[4]))  # an identical resend: duplicate_id
    frame = pl.DataFrame(rows, schema={c: None for c in attempts.ATTEMPT_SCHEMA}, orient="row")
    with transaction(engine) as conn:
        attempts.append(conn, frame)
    return {
        "unknown_user": 1,
        "response_time_negative": 1,
        "response_time_absurd": 1,
        "null_field": 1,
        "bad_id": 1,
        "duplicate_id": 1,
    }


def record_partitions_start(home: Path, start: date) -> None:
    """Make the partitions begin with the demo's data, here and in ``make ui`` / the CLI.

    Written to ``$SEEDTEST_HOME/partitions_start`` (read by ``settings.partitions_start``) and
    set for this process; ``SEEDTEST_PARTITIONS_START`` in the environment still wins.
    """
    (home / settings.PARTITIONS_START_FILE).write_text(start.isoformat() + "\n")
    if settings.env("SEEDTEST_PARTITIONS_START"):
        return
    import sys

    if "seedtest_assets.defs.partitions" in sys.modules:  # imported before the data existed
        from seedtest_assets.defs import partitions

        if settings.partitions_start().isoformat() != partitions.PARTITIONS_START:
            raise RuntimeError(
                "the partitions were defined before the demo recorded its first day; "
                "run the demo in a fresh process (seedtest demo)"
            )


def weeks_of(pop) -> list[date]:
    """The Mondays of the generated period."""
    return [pop.start + timedelta(weeks=i) for i in range((pop.end - pop.start).days // 7)]


def run_demo(users: int = 2000, weeks: int = 8, seed: int = 7, *, debug: bool = False) -> int:
    """Generate, materialize everything through Dagster, print a summary; exit code 0 = green.

    A failed run is one line in the summary (its job, partition, run id and failure); the
    step's traceback stays in the run (the UI), and is printed too with ``debug``.
    """
    # The demo replaces whole tables: it only ever writes the embedded warehouse, and says so.
    named = settings.pop_env("DATABASE_URL")
    if named:
        print(
            f"note: DATABASE_URL is set ({settings.redact_url(named)}); the demo does not use "
            f"it: it replaces whole tables, so it writes only the embedded SQLite warehouse "
            f"in {settings.seedtest_home()}",
            flush=True,
        )
    home = settings.seedtest_home()
    dagster_home = prepare_dagster_home(home)
    url = settings.default_database_url()
    t0 = time.perf_counter()
    upgrade(url)

    from seedtest_assets.core.synthetic import SyntheticConfig, generate, load

    print(f"[1/3] generating {users:,} students x {weeks} weeks (seed {seed}) ...", flush=True)
    pop = generate(
        SyntheticConfig(
            n_users=users,
            weeks=weeks,
            seed=seed,
            # Organisations of ~400 students, so that DIF across them is tested (200 in the
            # window at least), and a few items with planted DIF for it to find.
            n_orgs=max(2, users // DEMO_STUDENTS_PER_ORG),
            dif_items=DEMO_DIF_ITEMS,
        )
    )
    engine = make_engine(url)
    with transaction(engine) as conn:  # a fresh demo: outputs from earlier demos are cleared
        delete_all(conn, OUTPUT_TABLES)
    load(engine, pop, replace=True)
    planted = plant_feed_errors(engine, pop.start, weeks, seed)
    record_partitions_start(home, pop.start)
    t_gen = time.perf_counter()

    import warnings

    import dagster as dg

    # backfill_policy is "beta" in Dagster 1.13; the warning is noise for a demo's reader.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    from seedtest_assets.definitions import build_defs

    defs = build_defs()

    last_day = pop.end - timedelta(days=1)
    range_tags = {
        "dagster/asset_partition_range_start": pop.start.isoformat(),
        "dagster/asset_partition_range_end": last_day.isoformat(),
    }
    print(
        f"[2/3] materializing through Dagster: {pop.start} .. {last_day} "
        f"({(pop.end - pop.start).days} daily partitions per asset) ...",
        flush=True,
    )
    checks: dict[str, CheckTally] = {}
    failed_runs: list[str] = []
    console = "WARNING" if debug else "CRITICAL"
    with dg.DagsterInstance.get() as instance:
        for job_name, partitioning in DEMO_JOBS:
            job = defs.resolve_job_def(job_name)
            if partitioning == "weekly":
                runs = [{"dagster/partition": w.isoformat()} for w in weeks_of(pop)]
            elif partitioning == "last_week":
                runs = [{"dagster/partition": weeks_of(pop)[-1].isoformat()}]
            else:
                runs = [range_tags if partitioning == "daily" else {}]
            for tags in runs:
                result = job.execute_in_process(
                    instance=instance,
                    tags=tags,
                    # Step events stay in the instance (and the UI); the console gets
                    # Dagster's warnings and tracebacks only with --debug.
                    run_config={"loggers": {"console": {"config": {"log_level": console}}}},
                    raise_on_error=False,
                )
                if not result.success:
                    failed_runs.append(
                        f"{job_name} {tags} (run {result.run_id}): {_run_failure(result)}"
                    )
                for ev in result.get_asset_check_evaluations():
                    name = f"{ev.asset_key.to_user_string()}.{ev.check_name}"
                    tally = checks.setdefault(name, CheckTally())
                    if ev.passed:
                        tally.passed += 1
                    else:
                        tally.failed.append(ev.severity.value)
    t_mat = time.perf_counter()

    print("[3/3] summary", flush=True)
    print_summary(engine, pop, planted, checks, failed_runs, home, dagster_home)
    print_kpis(engine, weeks_of(pop))
    print_item_quality(engine, weeks_of(pop)[-1], home, pop.truth_dif)
    print_reports(engine, weeks_of(pop)[-1], home)
    print_validation(validation_figures(engine, weeks_of(pop), pop.end), weeks_of(pop))
    print(
        f"\ntime: generate+load {t_gen - t0:.1f} s, materialize {t_mat - t_gen:.1f} s, "
        f"total {t_mat - t0:.1f} s"
    )
    engine.dispose()
    # Planted bad rows make the WARN check fail by design; anything else failing is an error.
    unexpected = [n for n, t in checks.items() if any(sev != "WARN" for sev in t.failed)]
    return 1 if failed_runs or unexpected else 0


def _run_failure(result) -> str:
    """A failed run's error on one line (its failed steps' messages, shortened)."""

    text = " ".join(failure_message(result).split())
    return text if len(text) <= 300 else text[:297] + "..."


def validation_figures(engine, weeks: list[date], period_end: date) -> list[Figure]:
    """How the estimates and KPIs agree with the generator's truth, each against its floor.

    Items and students: the last week's estimates (its 3PL items are fitted as 2PL here, so
    only the generator's 2PL items are compared). KPIs: weeks with at least 3 weeks of history
    before them (earlier ones see every student as new, which no production week does).
    """
    import numpy as np

    from seedtest_assets.core.mirt_ability import table as abilities
    from seedtest_assets.core.mirt_item_params.pipeline import stored_item_params
    from seedtest_assets.core.synthetic import truth
    from seedtest_assets.core.weekly_kpi.pipeline import stored_kpis
    from seedtest_assets.core.weekly_kpi.truth import validate_against_truth

    week = weeks[-1]
    est = stored_item_params(engine, week, "2PL").filter(~pl.col("flagged").fill_null(False))
    with engine.connect() as conn:
        truth_items = truth.read_truth_items(conn)
        weekly = abilities.read_weekly(conn, week, ("user_id", "week_start", "theta"))
        theta = weekly.join(
            truth.read_truth_theta(conn, week).rename({"theta": "truth"}),
            on=["user_id", "week_start"],
        ).select("theta", "truth")
        truth_users = truth.read_truth_users(conn)
        truth_theta = truth.read_truth_theta(conn)
    items = est.join(truth_items.filter(pl.col("model") == "2PL"), on="item_id", suffix="_true")

    def corr(name, x, y, floor: float, unit: str, why_not: str = "") -> Figure:
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if why_not or x.size < 3:
            return Figure(name, None, "", None, why=why_not or f"only {x.size} {unit} to compare")
        r = float(np.corrcoef(x, y)[0, 1])
        rmse = float(np.sqrt(np.mean((x - y) ** 2)))
        return Figure(name, r, f"corr >= {floor:.2f}", r >= floor, f"RMSE {rmse:.2f}, n={x.size:,}")

    # An item's parameters are only as good as its responses: judge them where items have
    # enough (the default demo's median item has ~500 responses; 300 students give ~50).
    per_item = float(items["n_responses"].median() or 0) if "n_responses" in items.columns else 0
    few = (
        f"the median item has {per_item:.0f} responses in the window; item recovery is "
        f"judged from {MIN_ITEM_RESPONSES} (run a larger demo)"
        if per_item < MIN_ITEM_RESPONSES
        else ""
    )
    figures = [
        corr("item slope a (2PL items)", items["a"], items["a_true"], 0.80, "items", few),
        corr("item difficulty b (2PL items)", items["b"], items["b_true"], 0.95, "items", few),
        corr("student theta, week " + str(week), theta["theta"], theta["truth"], 0.85, "students"),
    ]
    mature = weeks[MATURE_WEEKS:]
    frames = [stored_kpis(engine, w).with_columns(week_start=pl.lit(w)) for w in mature]
    frames = [f for f in frames if f.height]
    if not frames:
        why = (
            f"the KPIs are judged on weeks with {MATURE_WEEKS} weeks of history; this demo has "
            f"{len(weeks)} weeks (run it with --weeks {MATURE_WEEKS + 1} or more)"
        )
        return [
            *figures,
            Figure("S churn risk: ROC AUC", None, "", None, why=why),
            Figure("P goal probability: Brier", None, "", None, why=why),
        ]
    report = validate_against_truth(
        pl.concat(frames, how="diagonal_relaxed"), truth_users, truth_theta, period_end=period_end
    )
    if np.isfinite(report.churn_auc):
        auc = Figure(
            "S churn risk: ROC AUC",
            report.churn_auc,
            ">= 0.75",
            report.churn_auc >= 0.75,
            f"{report.churn_positives:,} churners of {report.churn_students:,} student-weeks",
        )
    else:
        why = (
            "whether a student churned after week W is known 3 weeks later; no judged week "
            f"(from {mature[0]}) is that far from the end of the data ({period_end}): run "
            f"with --weeks {MATURE_WEEKS + 4} or more"
            if report.churn_students == 0
            else f"all {report.churn_students:,} student-weeks are of one class "
            f"({report.churn_positives:,} churned): an AUC needs both"
        )
        auc = Figure("S churn risk: ROC AUC", None, "", None, why=why)
    if report.goal_students and np.isfinite(report.goal_brier):
        brier = Figure(
            "P goal probability: Brier",
            report.goal_brier,
            f"< base rate {report.goal_brier_base:.4f}",
            report.goal_brier < report.goal_brier_base,
            f"{report.goal_students:,} forecasts, {report.goal_base_rate:.0%} reached",
            digits=4,
        )
    else:
        brier = Figure(
            "P goal probability: Brier", None, "", None, why="no goal still ahead to forecast"
        )
    return [*figures, auc, brier]


def print_validation(figures: list[Figure], weeks: list[date]) -> None:
    """The figures against their floors, and a one-line verdict."""
    print("\nestimates and KPIs vs the generator's truth (value, floor, verdict):")
    for f in figures:
        print(f.line())
    judged = [f for f in figures if f.passed is not None]
    met = sum(f.passed for f in judged)
    na = len(figures) - len(judged)
    verdict = "GOOD" if met == len(judged) else "BAD"
    print(
        f"  verdict: {verdict}: {met} of {len(judged)} figures meet their floors"
        + (f"; {na} cannot be computed at this size (see n/a)" if na else "")
    )


def print_kpis(engine, weeks: list[date]) -> None:
    """The last week's KPIs: the distribution and three students in plain words."""
    from seedtest_assets.core.weekly_kpi.pipeline import stored_kpis

    last = stored_kpis(engine, weeks[-1])
    print(f"\nweekly KPIs, week {weeks[-1]} ({last.height:,} students active in the last 4 weeks):")
    if not last.height:
        return
    for col, unit in (("I_t", "logits/week"), ("E_t", "logits/study hour"), ("P", ""), ("S", "")):
        q = last[col].drop_nulls()
        if q.len():
            print(
                f"  {col:<4} median {q.median():7.3f}  10%-90% {q.quantile(0.1):7.3f} .. "
                f"{q.quantile(0.9):7.3f} {unit}  (n={q.len():,})"
            )
    sample = last.filter(pl.col("P").is_not_null() & pl.col("active_this_week")).head(3)
    for r in sample.iter_rows(named=True):
        print(
            f"  student {r['user_id']}: theta {r['theta']:+.2f} ± {r['se']:.2f} at the end of "
            f"the week, {r['I_t']:+.3f}/week; {r['study_minutes']:.0f} min, active days "
            f"{r['active_days']}; {r['P']:.0%} chance of reaching {r['goal_theta']:+.2f} by "
            f"{r['goal_date']}; {r['S']:.0%} risk of not coming back within 2 weeks"
        )


def print_item_quality(engine, week: date, home: Path, planted: pl.DataFrame) -> None:
    """The last week's item_quality: what was judged and found (DIF against what the
    generator planted), and the item-bank page."""
    from seedtest_assets.core.item_quality import table as quality
    from seedtest_assets.core.item_quality.page import page_key

    with engine.connect() as conn:
        rows = quality.read_week(conn, week, "2PL")
    print(f"\nitem quality, week {week} ({rows.height:,} items of the calibration):")
    if rows.height == 0:
        print("  none (item_quality did not run)")
        return
    se = rows["b_se"].drop_nulls()
    print(
        f"  SEs: median b SE {se.median():.2f} logit over {se.len():,} items; fit tested "
        f"{rows['fit_p'].is_not_null().sum():,}, misfit at 1%: {int(rows['misfit'].sum())}"
    )
    print(
        f"  drift since last week: {int(rows['drifted'].fill_null(False).sum())} of "
        f"{rows['drifted'].is_not_null().sum():,} common items"
    )
    print("  " + dif_summary(rows, planted))
    for r in (
        rows.filter(pl.col("problems").is_not_null()).sort("fit_p").head(3).iter_rows(named=True)
    ):
        print(
            f"  e.g. item {r['item_id']}: {r['problems']}, a {r['a']:.2f}, b {r['b']:.2f}, "
            f"fit p {r['fit_p']:.2g}"
            if r["fit_p"] is not None
            else f"  e.g. item {r['item_id']}: {r['problems']}"
        )
    print(f"  item-bank page: {home / page_key('reports', week, '2PL')}")


def dif_summary(rows: pl.DataFrame, planted: pl.DataFrame) -> str:
    """One line: DIF flagged across organisations, and which of the planted DIF items (the
    generator's ``truth_dif``) were among the items tested and flagged."""
    tested = rows.filter(pl.col("dif_p").is_not_null())
    if tested.height == 0:
        return (
            "DIF across organisations: not tested (no two organisations with "
            f"{QualitySettings().dif_min_group_students} students in the window)"
        )
    flagged = set(tested.filter(pl.col("dif"))["item_id"].to_list())
    groups = int(tested["dif_groups"].max() or 0)
    line = f"DIF across {groups} organisations: {len(flagged)} of {tested.height:,} items flagged"
    plants = sorted(set(planted["item_id"].to_list()) & set(tested["item_id"].to_list()))
    if plants:
        found = [i for i in plants if i in flagged]
        others = len(flagged - set(plants))
        line += (
            f"; planted in {len(plants)} of the tested items, found {len(found)} "
            f"({', '.join(found) or 'none'}), {others} other item{'' if others == 1 else 's'} "
            "flagged"
        )
    return line


def print_reports(engine, week: date, home: Path) -> None:
    """What report_artifacts recorded for the week, and where to open two of them."""
    from seedtest_assets.core.report_artifacts.pipeline import stored_artifacts

    rows = stored_artifacts(engine, week)
    print(f"\nweekly reports, week {week}: {rows['user_id'].n_unique():,} students")
    for fmt in ("html", "pdf"):
        part = rows.filter(pl.col("format") == fmt)
        if part.height:
            mib = part["file_size_bytes"].sum() / 2**20
            kib = part["file_size_bytes"].median() / 1024
            print(f"  {fmt:<5}{part.height:>6,} files, {mib:6.1f} MiB (median {kib:.0f} KiB)")
    for url in rows["url"].head(2).to_list():
        print(f"  e.g. {url}")
    print(f"  folder: {home / 'reports' / week.isoformat()}")
    if rows.height:
        # Every report read back as its reader sees it (the asset's checks read a sample).
        from seedtest_assets.core.report_artifacts.store import StoreSettings
        from seedtest_assets.core.report_artifacts.verify import verify_reports

        v = verify_reports(
            engine,
            week,
            rows["user_id"].unique().to_list(),
            StoreSettings(local_dir=str(home)),
            "ko",
            limit=None,
        )
        found = v.read_problems + v.kpi_problems + v.theta_problems
        print(
            f"  read back: {v.checked:,} reports; the 4 KPIs shown in all {v.with_kpis:,} with "
            f"a KPI row and θ equal to mirt_ability in all {v.with_theta:,}"
            if not found
            else f"  read back: {v.checked:,} reports, {len(found)} PROBLEMS, e.g. {found[:3]}"
        )


def print_summary(engine, pop, planted, checks, failed_runs, home, dagster_home) -> None:
    """Rows per table, quarantine, statuses, checks, and where everything is."""
    tables = (
        "users",
        "items",
        "exam_sessions",
        "attempts",
        *OUTPUT_TABLES,
    )
    with engine.connect() as conn:
        counts = row_counts(conn, tables)
        rejected = rejects.rows_by_reason(conn)
        last, statuses = inactivity.latest_status_counts(conn)
    print(f"\nperiod {pop.start} .. {pop.end - timedelta(days=1)}; rows per table:")
    for name, n in counts.items():
        print(f"  {name:<22}{n:>10,}")
    print("\nquarantined attempts (attempt_rejects), by reason (planted in the feed):")
    for reason in sorted(set(rejected) | set(planted)):
        print(f"  {reason:<24}{int(rejected.get(reason, 0)):>6}   planted {planted.get(reason, 0)}")
    print(
        f"\ninactivity on {last}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))
    )
    print("\nasset checks:")
    for name, t in sorted(checks.items()):
        state = "passed" if not t.failed else f"FAILED ({', '.join(sorted(set(t.failed)))})"
        print(f"  {name:<52}{state}")
        if t.failed:
            print(f"      {EXPECTED_WARNINGS.get(name, 'NOT EXPECTED: see the run in the UI')}")
    if failed_runs:
        print("\nFAILED runs: " + "; ".join(failed_runs))
    print(f"\nwarehouse:       {home / 'warehouse.db'}")
    print(f"dagster home:    {dagster_home}")
    print("open the UI:     make ui   (then http://127.0.0.1:3000)")
