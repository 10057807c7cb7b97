"""One owner per table: only a table's owner module states SQL against it.

Every module under ``seedtest_assets/`` is parsed (AST, nothing imported) and each reference
to a warehouse table is attributed to it:

- an attribute of the schema module naming a table (``schema.users``, ``s.weekly_kpi``,
  ``warehouse.schema.attempts``, whatever the alias), or ``metadata.tables["users"]``;
- an import of a table object (``from seedtest_assets.core.warehouse.schema import users``);
- SQL text naming a table (``FROM users``, ``INTO attempts``, ``UPDATE weekly_kpi``,
  ``JOIN topics``) in a string that is not a docstring.

A reference outside the table's owner fails, naming module, table and owner. Exempt:
``seedtest_assets/core/warehouse/`` (the metadata, frame I/O and migrations themselves).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import seedtest_assets
from seedtest_assets.core.warehouse import schema

SOURCE = "seedtest_assets.core.source"
SYNTHETIC = "seedtest_assets.core.synthetic"

#: Table -> the module (or package: any module inside it) that owns every statement on it.
OWNERS: dict[str, str] = {
    # Source tables: written by the exam product; read by the source package only.
    "organizations": SOURCE,
    "users": SOURCE,
    "topics": SOURCE,
    "items": SOURCE,
    "exam_sessions": SOURCE,
    "attempts": SOURCE,
    # Outputs: each table's own module in the domain that writes it.
    "features_topic_daily": "seedtest_assets.core.features_topic_daily.table",
    "attempt_rejects": "seedtest_assets.core.attempts.rejects",
    "user_inactivity": "seedtest_assets.core.user_inactivity.table",
    "weekly_kpi": "seedtest_assets.core.weekly_kpi.table",
    "mirt_item_params": "seedtest_assets.core.mirt_item_params.table",
    "mirt_ability": "seedtest_assets.core.mirt_ability.table",
    "topic_ability": "seedtest_assets.core.topic_ability.table",
    "item_quality": "seedtest_assets.core.item_quality.table",
    "report_artifacts": "seedtest_assets.core.report_artifacts.table",
    # The generator's ground truth: generated, loaded and read by the synthetic package.
    "truth_items": SYNTHETIC,
    "truth_users": SYNTHETIC,
    "truth_theta_weekly": SYNTHETIC,
}

#: Modules free to name any table (the warehouse itself: metadata, frame I/O, migrations).
EXEMPT = ("seedtest_assets.core.warehouse",)

SCHEMA_MODULE = "seedtest_assets.core.warehouse.schema"
_SQL = re.compile(
    r"\b(?:FROM|INTO|UPDATE|JOIN)\s+[\"`]?(" + "|".join(map(re.escape, OWNERS)) + r")\b[\"`]?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    table: str
    how: str

    def __str__(self) -> str:
        owner = OWNERS[self.table]
        kind = "package" if owner in (SOURCE, SYNTHETIC) else "module"
        return (
            f"{self.module}:{self.line} references table {self.table!r} ({self.how}); only its "
            f"owner {kind} {owner} may: add a reader/writer there and call it"
        )


def _owns(module: str, owner: str) -> bool:
    return module == owner or module.startswith(owner + ".")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def references(module: str, source: str) -> list[Violation]:
    """Every table reference in ``source`` (the text of ``module``), owner or not."""
    tree = ast.parse(source)
    # Names bound to the schema module, and to packages above it (``warehouse.schema``).
    aliases: dict[str, str] = {}
    found: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if node.module == SCHEMA_MODULE and a.name in OWNERS:
                    found.append(Violation(module, node.lineno, a.name, "imports the Table"))
                aliases[a.asname or a.name] = full
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in OWNERS:
            dotted = _dotted(node.value)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            if head in aliases and ".".join(filter(None, [aliases[head], rest])) == SCHEMA_MODULE:
                found.append(Violation(module, node.lineno, node.attr, f"{dotted}.{node.attr}"))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in OWNERS
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "tables"
        ):
            found.append(Violation(module, node.lineno, node.slice.value, "metadata.tables[...]"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            for m in _SQL.finditer(node.value):
                found.append(Violation(module, node.lineno, m.group(1), f"SQL {m.group(0)!r}"))
    return found


def violations(package_dir: Path, package: str = "seedtest_assets") -> list[Violation]:
    """The table references in the modules under ``package_dir`` made outside the owner."""
    out = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        if any(_owns(module, e) for e in EXEMPT):
            continue
        for v in references(module, path.read_text(encoding="utf-8")):
            if not _owns(module, OWNERS[v.table]):
                out.append(v)
    return out


def test_every_table_has_an_owner() -> None:
    assert set(OWNERS) == set(schema.metadata.tables), (
        "a table without an owner (or an owner without a table): update OWNERS"
    )


def test_only_the_owner_references_a_table() -> None:
    found = violations(Path(seedtest_assets.__file__).parent)
    assert not found, "SQL outside the table's owner:\n" + "\n".join(map(str, found))


def test_every_owner_exists_and_uses_its_table() -> None:
    root = Path(seedtest_assets.__file__).parent
    for table, owner in OWNERS.items():
        rel = Path(*owner.split(".")[1:])
        files = (
            sorted((root / rel).rglob("*.py")) if (root / rel).is_dir() else [root / f"{rel}.py"]
        )
        assert files and all(f.is_file() for f in files), f"{owner} (owner of {table}) missing"
        used = [
            v for f in files for v in references(owner, f.read_text("utf-8")) if v.table == table
        ]
        if owner == SYNTHETIC or table == "items":
            continue  # the loader copies them generically; items is read joined to attempts
        assert used, f"{owner} owns {table} but never references it"


BAD_MODULE = '''
"""A docstring may say FROM users freely."""
from sqlalchemy import text

from seedtest_assets.core.warehouse import schema as s
from seedtest_assets.core.warehouse.schema import weekly_kpi
import seedtest_assets.core.warehouse as wh


def f(conn):
    conn.execute(s.mirt_ability.select())
    conn.execute(wh.schema.topics.select())
    conn.execute(text("SELECT * FROM attempts a JOIN users u ON u.user_id = a.user_id"))
    return s.metadata.tables["report_artifacts"], weekly_kpi, s.polars_schema
'''


@pytest.mark.parametrize("where", ["core/report_artifacts/pipeline.py", "cli.py"])
def test_a_reference_outside_the_owner_fails_with_module_table_and_owner(tmp_path, where):
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BAD_MODULE, encoding="utf-8")
    found = violations(tmp_path)
    assert sorted(v.table for v in found) == [
        "attempts",
        "mirt_ability",
        "report_artifacts",
        "topics",
        "users",
        "weekly_kpi",
    ]
    module = "seedtest_assets." + where.removesuffix(".py").replace("/", ".")
    message = str(next(v for v in found if v.table == "weekly_kpi"))
    assert module in message and "'weekly_kpi'" in message
    assert "seedtest_assets.core.weekly_kpi.table" in message


def test_the_owner_and_the_warehouse_may() -> None:
    owner = "seedtest_assets.core.weekly_kpi.table"
    text = "from seedtest_assets.core.warehouse import schema as s\nx = s.weekly_kpi\n"
    assert [v.table for v in references(owner, text)] == ["weekly_kpi"]
    assert _owns(owner, OWNERS["weekly_kpi"])
    assert _owns("seedtest_assets.core.source.users", OWNERS["organizations"])
    assert not _owns("seedtest_assets.core.sourcex", OWNERS["organizations"])
    assert any(_owns("seedtest_assets.core.warehouse.migrations.env", e) for e in EXEMPT)
