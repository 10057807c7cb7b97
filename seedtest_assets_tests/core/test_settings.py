"""Every environment variable is read in one place, ``core/settings.py``, and documented."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import seedtest_assets
from seedtest_assets.core import settings

PACKAGE = Path(seedtest_assets.__file__).resolve().parent
ROOT = PACKAGE.parent
SETTINGS = PACKAGE / "core" / "settings.py"


def _environment_reads(path: Path) -> list[str]:
    """``file:line`` of every ``os.environ`` / ``os.getenv`` / ``os.putenv`` use in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "getenv", "putenv", "unsetenv"}
        ):
            found.append(f"{path}:{node.lineno}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {a.name for a in node.names}
            if names & {"environ", "getenv", "putenv", "unsetenv"}:
                found.append(f"{path}:{node.lineno}")
    return found


def test_only_settings_touches_the_environment():
    reads = [
        where
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != SETTINGS
        for where in _environment_reads(path)
    ]
    assert reads == [], f"read the environment through seedtest_assets.core.settings: {reads}"


def test_the_check_sees_an_environment_read(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text("import os\nA = os.environ.get('X')\nfrom os import getenv\nB = os.sep\n")
    assert sorted(_environment_reads(planted)) == [f"{planted}:2", f"{planted}:3"]


def test_an_unlisted_variable_is_refused():
    with pytest.raises(KeyError, match="not a known setting"):
        settings.env("SEEDTEST_NO_SUCH_SETTING")


def test_env_reads_stripped_values_and_empty_when_unset():
    assert settings.env("MAX_USERS", {"MAX_USERS": " 12 "}) == "12"
    assert settings.env("MAX_USERS", {}) == ""


@pytest.mark.parametrize(
    ("raw", "message"),
    [("x", "must be an integer"), ("0", "between 1 and 64"), ("65", "between 1 and 64")],
)
def test_integer_settings_say_what_is_wrong(raw, message):
    with pytest.raises(settings.SettingsError, match=message):
        settings.positive_int(
            "SEEDTEST_REPORT_SHARDS", 1, maximum=64, environ={"SEEDTEST_REPORT_SHARDS": raw}
        )


def test_every_variable_is_documented_for_operators():
    docs = (ROOT / "docs" / "operations.md").read_text("utf-8") + (ROOT / "README.md").read_text(
        "utf-8"
    )
    missing = [name for name in settings.VARIABLES if f"`{name}`" not in docs and name not in docs]
    assert missing == [], f"not in docs/operations.md or README.md: {missing}"
