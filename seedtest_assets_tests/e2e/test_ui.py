"""End to end, as an operator inspects the platform: the asset lineage through the GraphQL API
the UI uses, and the UI's global asset graph in a real headless browser (Debian ``chromium``
driven by Playwright), against the real dagster-webserver + daemon on PostgreSQL storage.

The browser test skips locally when chromium (or Playwright) is missing and fails under
``CI=true`` (``.ci/run`` installs chromium). Its screenshot is a CI artifact:
``$SEEDTEST_ARTIFACTS_DIR/asset_graph.png`` (default ``artifacts/e2e/``).
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.dagster_servers import ROOT, DagsterServers, dagster_servers

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CHROMIUM = Path(os.environ.get("SEEDTEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("SEEDTEST_ARTIFACTS_DIR") or ROOT / "artifacts" / "e2e")

# --- The expected graph, written out from the SPEC ("What done looks like") ----------
#
# "attempts → features → KPIs; attempts → calibration → abilities → KPIs and reports;
#  reports → S3 objects + report_artifacts rows." One chain per clause; every consecutive pair
# must be an edge. (The last clause is not an edge: the `report_artifacts` asset writes both
# the S3 objects and the rows, kinds {s3, sql}.)
SPEC_CHAINS = [
    ("attempts", "features_topic_daily", "weekly_kpi"),
    ("attempts", "mirt_item_params", "mirt_ability", "weekly_kpi"),
    ("mirt_ability", "report_artifacts"),
]

# Every edge (upstream, downstream) between different assets. The first six are the SPEC's;
# the others are what the asset code declares beyond it, none contradicting it.
EXPECTED_EDGES = {
    # the SPEC's lineage
    ("attempts", "features_topic_daily"),
    ("features_topic_daily", "weekly_kpi"),
    ("attempts", "mirt_item_params"),
    ("mirt_item_params", "mirt_ability"),
    ("mirt_ability", "weekly_kpi"),
    ("mirt_ability", "report_artifacts"),
    # scoring reads the students' responses as well as the week's item parameters
    ("attempts", "mirt_ability"),
    # the weekly report shows the week's KPIs and the week's answers per topic
    ("weekly_kpi", "report_artifacts"),
    ("attempts", "report_artifacts"),
    # stage 6 (detect-inactivity) from the daily features
    ("features_topic_daily", "user_inactivity"),
    # per student (SPEC: "re-score, re-render" one student): calibration → ability → report,
    # each reading what its weekly counterpart reads
    ("mirt_item_params", "student/mirt_ability"),
    ("attempts", "student/mirt_ability"),
    ("student/mirt_ability", "student/report_artifacts"),
    ("weekly_kpi", "student/report_artifacts"),
    ("attempts", "student/report_artifacts"),
    # topic θ, stored weekly from the week's item parameters and the window's answers, read
    # by the weekly report and the per-student report (the batch runs no IRT itself)
    ("mirt_item_params", "topic_ability"),
    ("attempts", "topic_ability"),
    ("topic_ability", "report_artifacts"),
    ("topic_ability", "student/report_artifacts"),
    # the week's items judged (SEs, fit, drift, DIF) from its calibration (issue 16)
    ("mirt_item_params", "item_quality"),
}

# Self-dependencies on earlier partitions of the same asset (not cycles: each partition reads
# only strictly earlier ones): `improvement` looks back 7 days, scale linking 1 week.
SELF_DEPENDENCIES = {
    "features_topic_daily": "offsetted by -7 and -1 partitions",
    "mirt_item_params": "offsetted by -1 and -1 partitions",
}

GROUPS = {
    "attempts": "sources",
    "features_topic_daily": "features",
    "user_inactivity": "features",
    "mirt_item_params": "irt",
    "mirt_ability": "irt",
    "topic_ability": "irt",
    "item_quality": "irt",
    "student/mirt_ability": "irt",
    "weekly_kpi": "kpi",
    "report_artifacts": "reports",
    "student/report_artifacts": "reports",
}

# (partition type, description prefix or dynamic partitions name); None: not partitioned.
PARTITIONS = {
    "attempts": None,
    "features_topic_daily": ("TIME_WINDOW", "Daily"),
    "user_inactivity": ("TIME_WINDOW", "Daily"),
    "mirt_item_params": ("TIME_WINDOW", "Weekly"),
    "mirt_ability": ("TIME_WINDOW", "Weekly"),
    "topic_ability": ("TIME_WINDOW", "Weekly"),
    "item_quality": ("TIME_WINDOW", "Weekly"),
    "weekly_kpi": ("TIME_WINDOW", "Weekly"),
    "report_artifacts": ("TIME_WINDOW", "Weekly"),
    "student/mirt_ability": ("DYNAMIC", "users"),
    "student/report_artifacts": ("DYNAMIC", "users"),
}

#: The SPEC's five partitioned assets: the asset graph page must show each of them.
FIVE = (
    "features_topic_daily",
    "weekly_kpi",
    "mirt_item_params",
    "mirt_ability",
    "report_artifacts",
)

LINEAGE = """
{
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    dependedByKeys { path }
    dependencies { asset { assetKey { path } } partitionMapping { className description } }
    groupName
    isPartitioned
    partitionDefinition {
      type description
      dimensionTypes { type dynamicPartitionsDefinitionName }
    }
  }
}"""


def _key(path: list[str]) -> str:
    return "/".join(path)


def _topological_order(nodes: set[str], edges: set[tuple[str, str]]) -> list[str]:
    """Kahn's algorithm; raises if the graph has a cycle."""
    indegree = {n: 0 for n in nodes}
    for _, down in edges:
        indegree[down] += 1
    ready = sorted(n for n, d in indegree.items() if d == 0)
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for up, down in sorted(edges):
            if up == node:
                indegree[down] -= 1
                if indegree[down] == 0:
                    ready.append(down)
    if len(order) != len(nodes):
        raise AssertionError(f"cycle among {sorted(set(nodes) - set(order))}")
    return order


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's chromium and Playwright: skip locally without them, fail under ``CI=true``."""
    problem = None
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problem = f"{CHROMIUM} not found (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright not installed (pip install -e '.[test]')"
    if problem is None:
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (required under CI=true)")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[DagsterServers]:
    """One webserver + daemon for the module, on an instance database of its own."""
    _require_postgres()
    tmp = tmp_path_factory.mktemp("ui")
    instance_url = create_postgres_database("seedtest_e2e_ui")
    try:
        # Nothing is materialized here: the warehouse is the embedded SQLite in tmp.
        env = {"SEEDTEST_HOME": str(tmp), "DATABASE_URL": ""}
        with dagster_servers(tmp / "dagster_home", instance_url, env) as running:
            yield running
    finally:
        drop_postgres_database(instance_url)


# --- 4. lineage through the GraphQL API ------------------------------------------------------


def test_lineage_in_the_api_is_the_spec_graph(servers):
    nodes = {_key(n["assetKey"]["path"]): n for n in servers.graphql(LINEAGE)["assetNodes"]}
    assert set(nodes) == set(GROUPS), "the code location's assets"

    deps = {(_key(d["path"]), k) for k, n in nodes.items() for d in n["dependencyKeys"]}
    dependents = {(k, _key(d["path"])) for k, n in nodes.items() for d in n["dependedByKeys"]}
    assert deps == dependents, "dependencyKeys and dependedByKeys disagree"

    selfs = {up for up, down in deps if up == down}
    edges = {(up, down) for up, down in deps if up != down}
    assert edges == EXPECTED_EDGES, (
        f"missing: {sorted(EXPECTED_EDGES - edges)}; unexpected: {sorted(edges - EXPECTED_EDGES)}"
    )
    for chain in SPEC_CHAINS:
        for up, down in itertools.pairwise(chain):
            assert (up, down) in edges, f"SPEC lineage {' → '.join(chain)}: no {up} → {down}"

    # Self-dependencies only read strictly earlier partitions of the same asset.
    assert selfs == set(SELF_DEPENDENCIES)
    for key, offsets in SELF_DEPENDENCIES.items():
        [mapping] = [
            d["partitionMapping"]
            for d in nodes[key]["dependencies"]
            if _key(d["asset"]["assetKey"]["path"]) == key
        ]
        assert mapping and mapping["className"] == "TimeWindowPartitionMapping", mapping
        assert offsets in mapping["description"], mapping["description"]

    # Acyclic (apart from those): a topological order exists and runs source to reports.
    order = _topological_order(set(nodes), edges)
    assert order[0] == "attempts"
    for up, down in edges:
        assert order.index(up) < order.index(down)

    assert {k: n["groupName"] for k, n in nodes.items()} == GROUPS

    for key, expected in PARTITIONS.items():
        node, part = nodes[key], nodes[key]["partitionDefinition"]
        if expected is None:
            assert not node["isPartitioned"] and part is None, key
            continue
        kind, label = expected
        assert node["isPartitioned"] and part["type"] == kind, (key, part)
        if kind == "TIME_WINDOW":
            assert part["description"].startswith(label), (key, part["description"])
        else:
            assert part["dimensionTypes"][0]["dynamicPartitionsDefinitionName"] == label, key
    assert all(PARTITIONS[k] for k in FIVE), "the SPEC's five are partitioned"


# --- 5. the asset graph page in a real browser ----------------------------------------------

#: What the page shows, read from the rendered DOM: one entry per asset node of the graph
#: (group boxes are ``foreignObject.group``), with the node's visible name, its whole text,
#: the asset pages it links to (``/assets/<key>?view=partitions`` once live data loaded) and
#: where it is on the screen.
READ_NODES = """() => [...document.querySelectorAll('svg foreignObject:not(.group)')]
  .map(fo => ({fo, name: fo.querySelector('[data-tooltip]')}))
  .filter(({name}) => name)
  .map(({fo, name}) => ({
    name: name.textContent.trim(),
    text: fo.textContent,
    links: [...fo.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    box: (({left, top, right, bottom}) => ({left, top, right, bottom}))(
      fo.getBoundingClientRect()),
  }))"""

#: True once each of the five is drawn as a full node with its partitions row loaded.
FIVE_LOADED = f"""(five) => {{
  const nodes = ({READ_NODES})();
  return five.every(name => nodes.some(
    n => n.name === name && n.links.includes(`/assets/${{name}}?view=partitions`)));
}}"""

#: Zoomed to fit, the whole graph stays above 0.6 (about 0.7 here): below that the UI draws
#: minimal nodes whose names are cut at 18 characters ("features_topic_daily" has 20). 1700
#: high since item_quality joined the irt group (at 1440 the features group fell below).
VIEWPORT = {"width": 1920, "height": 1700}


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", head[16:24])


def test_asset_graph_page_shows_the_five_assets(chromium, servers):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "asset_graph.png"
    failed = ARTIFACTS / "asset_graph_failed.png"
    for old in (shot, failed):
        old.unlink(missing_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            # A fresh browser on localhost gets the "Join the Dagster community" dialog over the
            # graph; this is the flag its Skip button stores.
            context.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                # The global lineage view (Lineage in the left navigation): every code location,
                # every group. Groups start collapsed; ⌥E ("Expand all groups" in the graph's
                # settings menu) opens them and records them in the URL (?expanded=...), and
                # reloading that URL lays the whole graph out zoomed to fit.
                page.goto(f"http://127.0.0.1:{servers.port}/asset-groups")
                page.locator("svg foreignObject.group").first.wait_for()
                page.keyboard.press("Alt+KeyE")
                page.wait_for_url(lambda url: "expanded=" in url)
                page.reload()
                page.wait_for_function(FIVE_LOADED, arg=list(FIVE))
                nodes = page.evaluate(READ_NODES)
                page.screenshot(path=str(shot))
            except Exception as exc:
                page.screenshot(path=str(failed))
                shown = page.locator("svg foreignObject:not(.group)").evaluate_all(
                    "els => els.map(e => e.textContent.slice(0, 40))"
                )
                raise AssertionError(
                    f"asset graph page at {page.url}: {exc}\nnodes shown: {shown}\n"
                    f"page errors: {errors}\nscreenshot: {failed}"
                ) from exc
        finally:
            browser.close()

    names = sorted(n["name"] for n in nodes)
    # Every asset of the code location, by its displayed name (the key's last part).
    assert names == sorted(k.rsplit("/", 1)[-1] for k in GROUPS), (names, errors)
    for name in FIVE:
        page_link = f"/assets/{name}?view=partitions"
        [node] = [n for n in nodes if n["name"] == name and page_link in n["links"]]
        assert "partitions" in node["text"], node  # e.g. "98 partitions"
        box = node["box"]  # on the screenshot, not scrolled out of the viewport
        assert box["left"] >= 0 and box["right"] <= VIEWPORT["width"], node
        assert box["top"] >= 0 and box["bottom"] <= VIEWPORT["height"], node

    width, height = _png_size(shot)
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
    assert shot.stat().st_size > 50_000, "a blank page compresses to a few KB"
    print(f"asset graph screenshot: {shot} ({shot.stat().st_size:,} bytes)")


# --- 6. backfilling past weeks with their days, clicked through the UI -------------------

#: The newest backfills, to find the one a click created.
BACKFILLS = """
query Backfills { partitionBackfillsOrError(limit: 10) {
  __typename ... on PartitionBackfills { results { id timestamp } } } }"""

DAILY_ASSETS = ["features_topic_daily", "user_inactivity"]
WEEKLY_ASSETS = [
    "mirt_item_params",
    "mirt_ability",
    "topic_ability",
    "weekly_kpi",
    "report_artifacts",
]


def _backfill_ids(stack) -> set[str]:
    res = stack.gql(BACKFILLS)["partitionBackfillsOrError"]
    assert res["__typename"] == "PartitionBackfills", res
    return {b["id"] for b in res["results"]}


def _launch_from_catalog(page, port: int, assets: list[str], keys: str, n: int, shot: Path):
    """Catalog → tick ``assets`` → "Materialize selected" → Custom range ``keys`` → (check the
    count and the preview) → "Launch backfill". Returns the preview rows (asset, keys)."""
    page.goto(f"http://127.0.0.1:{port}/assets")
    for name in assets:
        # The checkbox input is drawn by its label; a click on the label ticks it.
        page.get_by_test_id(f"checkbox-{name}").locator("xpath=..").click()
    page.get_by_role("button", name=f"Materialize selected ({len(assets)})").click()
    dialog = page.get_by_role("dialog").filter(has_text=f"materialize {len(assets)} assets")
    dialog.get_by_role("button", name="Custom").click()
    # The range's text box. Not simply the first input: once the weekly assets' dialog has
    # loaded their health, a (hidden) checkbox can come first in it, and a fill() on that
    # waits out the timeout (CI, 2026-12-04).
    box = dialog.locator("input:visible:not([type=checkbox])").first
    box.fill(keys)
    box.press("Enter")
    dialog.get_by_text(f"{n} partitions", exact=True).wait_for()
    dialog.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("dialog").filter(has_text="Backfill preview")
    preview.get_by_role("button", name="OK").wait_for()
    preview.get_by_text(keys.strip("[]")).first.wait_for()  # the rows load after the frame
    # One row per asset: key, backfill policy, partitions definition, partitions to launch.
    lines = [x.strip() for x in preview.inner_text().splitlines() if x.strip()]
    page.screenshot(path=str(shot))
    preview.get_by_role("button", name="OK").click()
    dialog.get_by_role("button", name="Launch backfill").click()
    page.get_by_text("Created backfill").wait_for()
    # Each asset's row ends with its range: the next line after the partitions definition.
    return [
        (name, next(x for x in lines[i:] if "..." in x or x[:4].isdigit()))
        for i, name in enumerate(lines)
        if name in assets and (i == 0 or lines[i - 1] != name)
    ]


def test_backfill_past_weeks_with_their_days_from_the_ui(chromium, ops_stack):
    """Workflow 6: what docs/operations.md tells an operator to click. The backfill dialog
    cannot mix daily and weekly roots (Dagster: "The root assets of this selection have
    different partition definitions"), so past weeks are backfilled in two clicks-throughs:
    first their days (the two daily assets, one run over the range), then, once that has
    completed, the five weekly assets over exactly the picked weeks (no extra week: the KPIs
    read the week's abilities only). Every partition is materialized once, by 1 + k runs."""
    from playwright.sync_api import sync_playwright

    from seedtest_assets_tests.e2e.test_runs import describe, materialized_once

    stack = ops_stack
    weeks = [w.isoformat() for w in stack.complete_weeks(2)]
    first = date.fromisoformat(weeks[0])
    days = [(first + timedelta(days=i)).isoformat() for i in range(14)]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    launched: dict[str, str] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            context.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
            page = context.new_page()
            page.set_default_timeout(60_000)
            for step, assets, keys, n in (
                ("days", DAILY_ASSETS, days, 14),
                ("weeks", WEEKLY_ASSETS, weeks, 2),
            ):
                before = _backfill_ids(stack)
                preview = _launch_from_catalog(
                    page,
                    stack.servers.port,
                    assets,
                    f"[{keys[0]}...{keys[-1]}]",
                    n,
                    ARTIFACTS / f"backfill_preview_{step}.png",
                )
                # The preview lists exactly the picked range for every selected asset.
                assert sorted(preview) == sorted((a, f"{keys[0]}...{keys[-1]}") for a in assets)
                [launched[step]] = _backfill_ids(stack) - before
                done = stack.wait_backfill(launched[step], timeout=420)
                assert done["status"] == "COMPLETED_SUCCESS", done
        finally:
            browser.close()

    for step, assets, keys, predicted in (
        ("days", DAILY_ASSETS, days, 1),  # one run over the 14 days (single_run)
        ("weeks", WEEKLY_ASSETS, weeks, len(weeks)),  # a run per week (ADR 0001, Amend. 3)
    ):
        backfill = stack.backfill(launched[step])
        runs = stack.runs({"dagster/backfill": launched[step]})
        print(f"\nUI backfill of the {step}: {len(runs)} runs\n{describe(runs)}")
        statuses = {
            "/".join(s["assetKey"]["path"]): (
                s["numPartitionsTargeted"],
                s["numPartitionsMaterialized"],
                s["numPartitionsFailed"],
            )
            for s in backfill["assetBackfillData"]["assetBackfillStatuses"]
        }
        assert statuses == dict.fromkeys(assets, (len(keys), len(keys), 0))
        assert all(r["status"] == "SUCCESS" for r in runs), describe(runs)
        run_ids = {r["runId"] for r in runs}
        for asset in assets:
            assert materialized_once(stack, asset, keys, run_ids) == dict.fromkeys(keys, 1)
        assert len(runs) == predicted, describe(runs)

    # One θ per student-week, wherever a person reads it (the last week is the latest, so the
    # weekly batch recorded each student's student/mirt_ability in the UI): the report's text,
    # the UI's materialization metadata (GraphQL), `seedtest theta`, the KPI row and the table.
    _same_theta_everywhere(stack, date.fromisoformat(weeks[-1]))


def _same_theta_everywhere(stack, week: date, students: int = 5) -> None:
    import json

    from seedtest_assets.core.report_artifacts.verify import report_text
    from seedtest_assets_tests.test_cli import run_cli

    rows = stack.rows(
        "SELECT a.user_id, a.theta, a.se, (k.kpis->>'theta')::float, (k.kpis->>'se')::float "
        "FROM mirt_ability a JOIN weekly_kpi k ON k.user_id = a.user_id "
        "AND k.week_start = a.week_start JOIN report_artifacts r ON r.user_id = a.user_id "
        "AND r.week_start = a.week_start AND r.format = 'html' "
        "WHERE a.week_start = :w AND a.source = 'weekly' ORDER BY a.user_id LIMIT :n",
        w=week,
        n=students,
    )
    assert len(rows) == students
    reports = stack.home.parent / "reports" / week.isoformat()
    for user_id, theta, se, kpi_theta, kpi_se in rows:
        assert (kpi_theta, kpi_se) == (theta, se), user_id  # the KPI row copies the row
        shown = report_text((reports / f"{user_id}.html").read_text("utf-8")).theta_headline
        assert shown == f"θ {theta:.2f} ± {se:.2f}", (user_id, shown, theta, se)
        [mat] = stack.materializations("student/mirt_ability", [str(user_id)])[-1:]
        meta = {e["label"]: e for e in mat["metadataEntries"]}
        assert meta["theta"]["floatValue"] == theta and meta["se"]["floatValue"] == se, user_id
        assert meta["week_start"]["text"] == week.isoformat()
        proc = run_cli(
            "theta", "--user", str(user_id), "--week", week.isoformat(),
            env={"DATABASE_URL": stack.warehouse_url, "SEEDTEST_HOME": str(stack.home.parent)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert (answer["theta"], answer["se"]) == (theta, se), user_id
