"""Migrations both ways on populated warehouses, on SQLite and PostgreSQL.

The population (``populated``): ~100 synthetic students x 2 weeks, a few planted bad
attempts, and every pipeline's output (daily features and rejects, inactivity, two weeks of
calibration, item quality, scoring and topic ability, an online re-score, the KPIs, two
report rows), so
that every column of every table holds data. Each test gets its own copy (a file copy on SQLite, a
``CREATE DATABASE ... TEMPLATE`` on PostgreSQL).

What must hold: a lossless step down and back up keeps every value; a downgrade that would
drop data refuses, says what, and changes nothing (below 0009 that is first the derived
``item_quality``, below 0007 the derived ``topic_ability``: dropped with
``--allow-data-loss``, every other value kept, and materializing them again restores them
exactly); a failed migration leaves the database as
it was (one transaction, on SQLite too); a leftover ``_alembic_tmp_*`` table never blocks;
two concurrent upgrades serialize.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, create_engine, func, inspect, select, text

from seedtest_assets.core.warehouse import (
    downgrade,
    insert_frame,
    make_engine,
    transaction,
    upgrade,
)
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.migrate import MigrationRefused, migrate
from seedtest_assets.core.warehouse.ready import _scripts
from seedtest_assets_tests.conftest import (
    _admin_engine,
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.test_cli import SEEDTEST, one_error_line, run_cli

START = date(2026, 3, 2)  # a Monday
WEEKS = [START, START + timedelta(weeks=1)]
NOW = datetime(2026, 3, 16, 12, 0)
#: The shipped revisions, oldest first (later migrations extend it).
REVISIONS = [r.revision for r in reversed(list(_scripts().walk_revisions()))]
HEAD = REVISIONS[-1]


def steps_down_to(revision: str) -> str:
    """The relative target (``-n``) that goes from head down to ``revision``."""
    return f"-{len(REVISIONS) - 1 - REVISIONS.index(revision)}"


def fitted_at(i: int) -> datetime:
    """When the population's week ``i`` was calibrated and scored."""
    return NOW - timedelta(days=2 - i)


#: The derived tables a step down drops (0009: item_quality, 0007: topic_ability).
DERIVED = ("item_quality", "topic_ability")


def population_quality_settings():
    """Thresholds that make ~100 students fill every item_quality column (DIF across the
    population's 5-student organisations, drift on items of a few responses; misfit at 50%
    so that ``problems`` has values)."""
    from seedtest_assets.core.item_quality.assess import QualitySettings

    return QualitySettings(
        fit_alpha=0.5, drift_min_responses=1, dif_min_group_students=3, dif_min_item_responses=2
    )


def rematerialize_derived(url: str) -> None:
    """Rebuild ``topic_ability`` and ``item_quality`` of the population's weeks as
    ``_populate`` built them."""
    from seedtest_assets.core.item_quality.pipeline import assess_week
    from seedtest_assets.core.topic_ability.pipeline import materialize_week

    engine = make_engine(url)
    for i, week in enumerate(WEEKS):
        assess_week(engine, week, now=fitted_at(i), settings=population_quality_settings())
        materialize_week(engine, week, now=fitted_at(i))
    assess_3pl(engine)
    engine.dispose()


def assess_3pl(engine) -> None:
    """The population's second week judged under its 3PL calibration (c_se has values)."""
    from seedtest_assets.core.item_quality.pipeline import assess_week

    assess_week(
        engine, WEEKS[1], now=fitted_at(1), model="3PL", settings=population_quality_settings()
    )


def empty_derived(url: str, tables: tuple[str, ...] = DERIVED) -> None:
    """Delete the derived tables' rows, so a downgrade passes 0009 and 0007 without loss (for
    tests of the revisions below them)."""
    engine = make_engine(url)
    with transaction(engine) as conn:
        for name in tables:
            conn.execute(s.metadata.tables[name].delete())
    engine.dispose()


def _populate(url: str) -> None:
    from seedtest_assets.core.features_topic_daily.pipeline import materialize_features
    from seedtest_assets.core.item_quality.pipeline import assess_week
    from seedtest_assets.core.mirt_ability.online import update_theta
    from seedtest_assets.core.mirt_ability.pipeline import score_week
    from seedtest_assets.core.mirt_item_params.pipeline import calibrate_week
    from seedtest_assets.core.synthetic import SyntheticConfig, generate, load
    from seedtest_assets.core.topic_ability.pipeline import materialize_week
    from seedtest_assets.core.user_inactivity.pipeline import materialize_inactivity
    from seedtest_assets.core.weekly_kpi.pipeline import materialize_weekly_kpi
    from seedtest_assets.demo import plant_feed_errors

    upgrade(url)
    engine = make_engine(url)
    # Integer-style ids ("17"): the shape a warehouse migrated from integer ids has, so that
    # every step below 0008 can go down and back (text ids refuse that step: see 0008 tests).
    pop = generate(SyntheticConfig(n_users=100, weeks=2, seed=11, start=START, id_style="integer"))
    load(engine, pop)
    plant_feed_errors(engine, START, 2, 11)
    # The planted unknown student and blank session id are text; as integers (an unknown
    # number, a negative session) they stay errors that a warehouse before 0008 could hold.
    with transaction(engine) as conn:
        conn.execute(
            s.attempts.update()
            .where(s.attempts.c.user_id == "no-such-student")
            .values(user_id="99999999")
        )
        conn.execute(
            s.attempts.update().where(s.attempts.c.session_id == "   ").values(session_id="-1")
        )
    end = START + timedelta(weeks=2)
    materialize_features(engine, START, end, now=NOW)
    materialize_inactivity(engine, START, end, now=NOW)
    for i, week in enumerate(WEEKS):
        fitted = fitted_at(i)
        calibrate_week(engine, week, now=fitted)
        assess_week(engine, week, now=fitted, settings=population_quality_settings())
        score_week(engine, week, now=fitted)
        materialize_week(engine, week, now=fitted)
        materialize_weekly_kpi(engine, week, now=NOW)
    # A 3PL calibration of the second week too, so that c's SE has values.
    calibrate_week(engine, WEEKS[1], now=fitted_at(1), model="3PL", linking="none")
    assess_3pl(engine)
    with engine.connect() as conn:
        someone = conn.execute(select(s.mirt_ability.c.user_id).limit(1)).scalar_one()
    assert update_theta(engine, [someone], now=NOW).rows.height == 1
    with transaction(engine) as conn:
        insert_frame(
            conn,
            s.report_artifacts,
            pl.DataFrame(
                {
                    "week_start": [WEEKS[1]] * 2,
                    "user_id": [someone] * 2,
                    "format": ["html", "pdf"],
                    "url": ["file:///r/1.html", "file:///r/1.pdf"],
                    "file_size_bytes": [1234, 56789],
                    "sha256": ["a" * 64, "b" * 64],
                    "generated_at": [NOW, NOW],
                }
            ),
        )
    engine.dispose()


def snapshot(url: str, skip: dict[str, set[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (head schema) and of the view, in a stable order.

    ``skip``: table -> columns to leave out (those a lossy step emptied).
    """
    skip = skip or {}
    engine = make_engine(url)
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in s.metadata.sorted_tables:
            cols = [c for c in table.columns if c.name not in skip.get(table.name, set())]
            if not cols:  # every column skipped: the row count only
                n = conn.execute(select(func.count()).select_from(table)).scalar_one()
                out[table.name] = [()] * n
                continue
            order = list(table.primary_key.columns) or [
                c for c in cols if not isinstance(c.type, JSON)
            ]
            out[table.name] = [tuple(r) for r in conn.execute(select(*cols).order_by(*order))]
        out["mirt_ability_latest"] = [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT user_id, theta, se, source, fitted_at FROM mirt_ability_latest "
                    "ORDER BY user_id"
                )
            )
        ]
    engine.dispose()
    return out


def schema_diff(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, s.metadata)
    engine.dispose()
    return diff


def revision_rows(url: str) -> list[tuple]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    engine.dispose()
    return rows


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def template(request, tmp_path_factory):
    """(backend, URL) of the populated warehouse every test copies (never changed itself)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('populated') / 'template.db'}"
        _populate(url)
        yield "sqlite", url
        return
    _require_postgres()
    url = create_postgres_database("seedtest_mig_tmpl")
    _populate(url)
    yield "postgres", url
    drop_postgres_database(url)


@pytest.fixture
def populated(template, tmp_path):
    """A private copy of the populated warehouse."""
    backend, url = template
    if backend == "sqlite":
        src = Path(url.removeprefix("sqlite:///"))
        dst = tmp_path / "warehouse.db"
        shutil.copy(src, dst)
        yield f"sqlite:///{dst}"
        return
    from sqlalchemy.engine import make_url

    name = f"seedtest_mig_{uuid.uuid4().hex[:10]}"
    with _admin_engine().connect() as conn:  # names are ours, not user input
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(url).database}"'))
    copy = make_url(url).set(database=name).render_as_string(hide_password=False)
    yield copy
    drop_postgres_database(copy)


@pytest.fixture(params=["sqlite", "postgres"])
def empty(request, tmp_path):
    """An empty, unmigrated database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'w.db'}"
        return
    _require_postgres()
    url = create_postgres_database("seedtest_mig_empty")
    yield url
    drop_postgres_database(url)


# --------------------------------------------------------------------------- tests
def test_the_population_fills_every_column(populated):
    engine = make_engine(populated)
    empty_columns = []
    with engine.connect() as conn:
        for table in s.metadata.sorted_tables:
            for col in table.columns:
                n = conn.execute(select(col).where(col.is_not(None)).limit(1)).first()
                if n is None:
                    empty_columns.append(f"{table.name}.{col.name}")
    engine.dispose()
    assert empty_columns == []


@pytest.mark.parametrize("target", ["0006", "0004", "0003", "-2", steps_down_to("0003")])
def test_a_lossless_step_down_and_back_keeps_every_value(populated, target):
    """Down to ``target`` and back: every value of every table kept, but the derived
    ``item_quality`` and ``topic_ability`` (0009 and 0007 drop them, with
    --allow-data-loss), which come back empty and are rebuilt, value for value, by
    materializing them again."""
    before = snapshot(populated)
    assert before["topic_ability"] and before["item_quality"]
    result = migrate(populated, target, downgrade=True, allow_data_loss=True)
    expected = REVISIONS[-3] if target == "-2" else "0003" if target.startswith("-") else target
    assert (result.before, result.after) == (HEAD, expected)
    # The derived tables added above the target (0009: item_quality, 0007: topic_ability).
    dropped = {"item_quality"} | ({"topic_ability"} if expected < "0007" else set())
    assert not dropped & table_names(populated)
    assert upgrade(populated) == HEAD
    assert snapshot(populated) == {**before, **{t: [] for t in dropped}}
    assert schema_diff(populated) == []
    assert revision_rows(populated) == [(HEAD,)]
    rematerialize_derived(populated)
    assert snapshot(populated) == before


def test_below_0009_a_downgrade_refuses_while_item_quality_holds_rows(populated):
    before = snapshot(populated)
    with pytest.raises(MigrationRefused) as info:
        downgrade(populated, "-1")
    message = str(info.value)
    assert "below revision 0009" in message and "--allow-data-loss" in message
    assert f"item_quality ({len(before['item_quality']):,} rows)" in message
    assert revision_rows(populated) == [(HEAD,)] and snapshot(populated) == before
    empty_derived(populated, ("item_quality",))
    emptied = snapshot(populated)
    assert downgrade(populated, "-1") == "0008" and upgrade(populated) == HEAD
    assert snapshot(populated) == emptied and schema_diff(populated) == []


def test_below_0007_a_downgrade_refuses_while_topic_ability_holds_rows(populated):
    empty_derived(populated, ("item_quality",))  # else 0009 refuses first (the test above)
    before = snapshot(populated)
    with pytest.raises(MigrationRefused) as info:
        downgrade(populated, steps_down_to("0006"))
    message = str(info.value)
    assert "\n" not in message
    assert "below revision 0007" in message and "--allow-data-loss" in message
    assert f"topic_ability ({len(before['topic_ability']):,} rows)" in message
    assert revision_rows(populated) == [(HEAD,)]
    assert snapshot(populated) == before
    # Empty (never materialized, or emptied), the step down is silent and lossless.
    empty_derived(populated)
    emptied = snapshot(populated)
    assert downgrade(populated, steps_down_to("0006")) == "0006"
    assert upgrade(populated) == HEAD
    assert snapshot(populated) == emptied and schema_diff(populated) == []


def test_at_0003_the_growth_line_is_back_in_theta_end(populated):
    """The meaning of each column at 0003 (what that revision's code reads)."""
    engine = make_engine(populated)
    q = "SELECT ability_id, theta, se, theta_window, theta_window_se, growth FROM mirt_ability"
    with engine.connect() as conn:
        head = {r[0]: r[1:] for r in conn.execute(text(q))}
    engine.dispose()
    empty_derived(populated)  # a lossless step down to 0003
    downgrade(populated, "0003")
    engine = make_engine(populated)
    q = "SELECT ability_id, theta, se, theta_end, theta_end_se, growth FROM mirt_ability"
    with engine.connect() as conn:
        old = {r[0]: r[1:] for r in conn.execute(text(q))}
    engine.dispose()
    assert old.keys() == head.keys()
    for key, (theta, se, window, window_se, growth) in head.items():
        assert growth is not None  # every row of the population has a growth fit
        assert old[key] == (window, window_se, theta, se, growth)


@pytest.mark.parametrize("target", ["0002", "0001", "base", steps_down_to("0002")])
def test_a_downgrade_that_would_drop_data_refuses_and_changes_nothing(populated, target):
    empty_derived(populated)  # else 0009 and 0007 refuse first (the tests above)
    before = snapshot(populated)
    with pytest.raises(MigrationRefused) as info:
        downgrade(populated, target)
    message = str(info.value)
    assert "\n" not in message
    assert "below revision 0003" in message and "--allow-data-loss" in message
    engine = make_engine(populated)
    with engine.connect() as conn:
        study = conn.execute(text("SELECT count(study_ms) FROM features_topic_daily")).scalar()
        growth = conn.execute(text("SELECT count(growth) FROM mirt_ability")).scalar()
    engine.dispose()
    assert f"features_topic_daily.study_ms ({study:,} values)" in message
    assert f"mirt_ability.growth ({growth:,} values)" in message
    # 0007 to 0004 were reverted before 0003 refused: the transaction undid them too.
    assert revision_rows(populated) == [(HEAD,)]
    assert snapshot(populated) == before
    assert schema_diff(populated) == []
    assert not {n for n in table_names(populated) if n.startswith("_alembic_tmp_")}


def test_the_cli_refusal_is_one_line(populated, tmp_path):
    proc = run_cli(
        "db", "downgrade", "0002", env={"DATABASE_URL": populated, "SEEDTEST_HOME": str(tmp_path)}
    )
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc)
    assert line.startswith("seedtest: error: refusing to downgrade ")
    # The first step down that would lose data refuses: 0009's (item_quality).
    assert "below revision 0009" in line and "item_quality (" in line
    assert "nothing was changed" in line
    assert proc.stdout == ""
    assert revision_rows(populated) == [(HEAD,)]


def test_allow_data_loss_drops_the_columns_and_an_upgrade_brings_them_back_empty(populated):
    before = snapshot(populated)
    assert downgrade(populated, "0002", allow_data_loss=True) == "0002"
    engine = make_engine(populated)
    cols = {c["name"] for c in inspect(engine).get_columns("mirt_ability")}
    assert not cols & {"growth", "theta_window", "theta_end"}
    with engine.connect() as conn:  # the view works at 0002 (SQLite rebuilt the table under it)
        assert conn.execute(text("SELECT count(*) FROM mirt_ability_latest")).scalar() > 0
    engine.dispose()
    assert upgrade(populated) == HEAD
    assert schema_diff(populated) == []
    # Everything but mirt_ability's theta columns and the dropped ones is as it was.
    lossy = {
        "topic_ability": {c.name for c in s.topic_ability.columns},  # the whole table
        "item_quality": {c.name for c in s.item_quality.columns},
        "features_topic_daily": {"study_ms"},
        "mirt_ability": {
            "theta",
            "se",
            "growth",
            "growth_se",
            "growth_cov",
            "theta_window",
            "theta_window_se",
        },
    }
    after = snapshot(populated, skip=lossy)
    expected = snapshot_without(before, populated, lossy)
    assert after.pop("topic_ability") == [] and expected.pop("topic_ability")
    assert after.pop("item_quality") == [] and expected.pop("item_quality")
    assert {k: v for k, v in after.items() if k != "mirt_ability_latest"} == expected
    assert downgrade(populated, "base", allow_data_loss=True) == ""
    assert table_names(populated) == {"alembic_version"}
    assert upgrade(populated) == HEAD and schema_diff(populated) == []


def snapshot_without(full: dict, url: str, skip: dict[str, set[str]]) -> dict:
    """``full`` (a snapshot taken earlier) without the ``skip`` columns."""
    out = {}
    for table in s.metadata.sorted_tables:
        keep = [i for i, c in enumerate(table.columns) if c.name not in skip.get(table.name, ())]
        out[table.name] = [tuple(row[i] for i in keep) for row in full[table.name]]
    return out


def test_every_step_both_ways_on_an_empty_database(empty):
    """The SQLite issue: `downgrade -1` at 0003 failed (the view) and left a temp table."""
    for i, rev in enumerate(REVISIONS):
        assert upgrade(empty, rev) == rev
        below = REVISIONS[i - 1] if i else ""
        assert downgrade(empty, "-1") == below
        assert not {n for n in table_names(empty) if n.startswith("_alembic_tmp_")}
        assert upgrade(empty, rev) == rev
    assert schema_diff(empty) == []
    assert downgrade(empty, "base") == ""
    assert upgrade(empty) == HEAD and schema_diff(empty) == []


def test_a_failed_migration_leaves_the_database_as_it_was(populated):
    """An analyst's view on a column a downgrade drops makes the rebuild fail (SQLite) or the
    DROP COLUMN fail (PostgreSQL): every step of the command is rolled back."""
    engine = make_engine(populated)
    with engine.begin() as conn:
        conn.execute(text("CREATE VIEW analyst_growth AS SELECT user_id, growth FROM mirt_ability"))
    engine.dispose()
    before = snapshot(populated)
    with pytest.raises(Exception, match=r"analyst_growth|depend"):
        downgrade(populated, "0002", allow_data_loss=True)
    assert revision_rows(populated) == [(HEAD,)]
    assert snapshot(populated) == before
    assert schema_diff(populated) == []
    assert not {n for n in table_names(populated) if n.startswith("_alembic_tmp_")}
    engine = make_engine(populated)
    with engine.begin() as conn:
        conn.execute(text("DROP VIEW analyst_growth"))
    engine.dispose()
    assert downgrade(populated, "0002", allow_data_loss=True) == "0002"


def test_a_leftover_temp_table_is_removed_in_the_same_transaction(populated, tmp_path):
    """What a failed SQLite batch rebuild left before: _alembic_tmp_mirt_ability (a copy)."""
    empty_derived(populated)  # a lossless step down to 0004
    engine = make_engine(populated)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE _alembic_tmp_mirt_ability (ability_id INTEGER)"))
    engine.dispose()
    before = snapshot(populated)
    proc = run_cli(
        "db", "downgrade", "0004", env={"DATABASE_URL": populated, "SEEDTEST_HOME": str(tmp_path)}
    )
    assert proc.returncode == 0, proc.stderr
    assert "seedtest: note: removed _alembic_tmp_mirt_ability" in proc.stderr
    assert f"at revision 0004 (was {HEAD})" in proc.stdout
    assert "_alembic_tmp_mirt_ability" not in table_names(populated)
    assert upgrade(populated) == HEAD
    assert snapshot(populated) == before


def test_a_temp_table_without_its_original_refuses(populated):
    engine = make_engine(populated)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE _alembic_tmp_scores (x INTEGER)"))
    engine.dispose()
    with pytest.raises(MigrationRefused, match="has _alembic_tmp_scores but no scores") as info:
        downgrade(populated, "0004")
    assert "ALTER TABLE _alembic_tmp_scores RENAME TO scores" in str(info.value)
    assert revision_rows(populated) == [(HEAD,)]
    assert "_alembic_tmp_scores" in table_names(populated)


def test_downgrade_of_a_missing_or_unmigrated_warehouse_is_one_line(tmp_path):
    missing = tmp_path / "nowhere" / "w.db"
    proc = run_cli("db", "downgrade", "-1", env={"DATABASE_URL": f"sqlite:///{missing}"})
    assert proc.returncode == 4
    assert "SQLite file missing): nothing to downgrade" in one_error_line(proc)
    assert not missing.parent.exists()
    blank = tmp_path / "blank.db"
    create_engine(f"sqlite:///{blank}").connect().close()
    proc = run_cli("db", "downgrade", "base", env={"DATABASE_URL": f"sqlite:///{blank}"})
    assert proc.returncode == 4
    assert "(not migrated): nothing to downgrade" in one_error_line(proc)


# --------------------------------------------------------------------------- concurrency
def _upgrade_processes(url: str, home: Path, n: int = 2) -> list[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": url, "SEEDTEST_HOME": str(home)}
    return [
        subprocess.Popen(
            [str(SEEDTEST), "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_cli_upgrades_serialize(empty, round_, tmp_path):
    """Two real `seedtest db upgrade` processes on one empty database at the same time:
    both exit 0, one schema, one version row (before: a duplicate-key error on
    PostgreSQL, "table already exists" or "database is locked" on SQLite)."""
    procs = _upgrade_processes(empty, tmp_path)
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert f"at revision {HEAD}" in out
    assert revision_rows(empty) == [(HEAD,)]
    assert schema_diff(empty) == []


@pytest.mark.postgres
@pytest.mark.slow
def test_an_upgrade_waits_for_the_migration_lock_and_says_so(tmp_path):
    """While another session holds the advisory lock, `seedtest db upgrade` waits (saying
    why on stderr) and finishes once it is released."""
    from seedtest_assets.core.warehouse.migrate import MIGRATION_LOCK_KEY

    _require_postgres()
    url = create_postgres_database("seedtest_mig_lock")
    holder = make_engine(url)
    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
            (proc,) = _upgrade_processes(url, tmp_path, n=1)
            line = proc.stderr.readline()  # blocks until the CLI says it waits
            assert "another seedtest migration of" in line and "waiting" in line, line
            assert str(MIGRATION_LOCK_KEY) in line
            assert proc.poll() is None  # still waiting
            assert revision_rows_or_none(url) is None
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
            out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert f"at revision {HEAD}" in out
        assert revision_rows(url) == [(HEAD,)]
    finally:
        holder.dispose()
        drop_postgres_database(url)


def revision_rows_or_none(url: str) -> list[tuple] | None:
    """The version rows, or None while the database has no version table."""
    return revision_rows(url) if "alembic_version" in table_names(url) else None


# --------------------------------------------------------------------------- 0008: text ids
def test_0008_turns_a_populated_integer_warehouse_into_text_ids_changing_no_row(populated):
    """Down to 0007 (integer ids, as every warehouse before this revision), then up: every
    row is still there, each id now the text of its integer, every other value identical
    (``item_quality``, which 0009 adds, emptied first)."""
    empty_derived(populated, ("item_quality",))
    downgrade(populated, "0007")
    engine = make_engine(populated)
    before: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in s.metadata.sorted_tables:
            if table.name == "item_quality":  # not at 0007
                before[table.name] = []
                continue
            # Head metadata reads 0007's integer ids as the driver returns them (ints).
            order = list(table.primary_key.columns) or [table.c.id]
            before[table.name] = [
                tuple(r) for r in conn.execute(select(*table.columns).order_by(*order))
            ]
        kinds = {c["name"]: str(c["type"]).upper() for c in inspect(conn).get_columns("attempts")}
    engine.dispose()
    assert "INT" in kinds["user_id"]  # really integers at 0007
    assert sum(len(v) for v in before.values()) > 5_000

    upgrade(populated)
    assert schema_diff(populated) == []
    after = snapshot(populated)
    id_cols = {
        t.name: [i for i, c in enumerate(t.columns) if c.name in s.id_columns(t)]
        for t in s.metadata.sorted_tables
    }
    for table in s.metadata.sorted_tables:
        expect = [
            tuple(
                str(v) if i in id_cols[table.name] and v is not None else v
                for i, v in enumerate(row)
            )
            for row in before[table.name]
        ]
        got = after[table.name]
        # Text order differs from number order ("10" < "9"): compare as sets of rows.
        assert len(got) == len(expect), table.name
        assert sorted(map(repr, got)) == sorted(map(repr, expect)), table.name


def test_0008_downgrade_refuses_text_ids_and_changes_nothing(populated):
    engine = make_engine(populated)
    with transaction(engine) as conn:
        conn.execute(
            s.users.update().where(s.users.c.user_id == "1").values(user_id="test-user-123")
        )
    engine.dispose()
    before = snapshot(populated)
    with pytest.raises(
        MigrationRefused, match=r"users\.user_id \(1 values such as 'test-user-123'\)"
    ):
        downgrade(populated, "0007", allow_data_loss=True)
    assert snapshot(populated) == before
    assert revision_rows(populated) == [(HEAD,)]
