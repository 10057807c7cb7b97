"""The id rule (``core/ids.py``): one verdict and one phrase in Python and in polars."""

from __future__ import annotations

import unicodedata

import polars as pl
import pytest

from seedtest_assets.core.ids import (
    BLOB_MARK,
    MAX_ID_LENGTH,
    WHITESPACE,
    blob_text,
    id_problem,
    id_problem_expr,
    shown,
)

#: value -> the phrase (None: a usable id). Includes the edges of each rule and values where
#: Python's and Rust's ideas of whitespace differ (U+001C..U+001F are whitespace to Python's
#: str.strip, not to polars; both are control characters).
CASES: dict[str, str | None] = {
    "u-000123": None,
    "test-user-123": None,
    "auth0|5f7c8ec7c33c6c004bbafe82": None,
    "0f8fad5b-d9cb-469f-a165-70867728950e": None,
    "U-1": None,
    unicodedata.normalize("NFD", "학생-é"): None,
    "1'; DROP TABLE users; --": None,
    "../../etc/passwd": None,
    "a b": None,  # inner spaces are part of an id
    "x" * MAX_ID_LENGTH: None,
    "": "empty",
    " ": "whitespace only",
    "\t\n": "whitespace only",
    "\u00a0": "whitespace only",  # no-break space
    "\u3000": "whitespace only",  # ideographic space
    " u-1": "leading or trailing whitespace",
    "u-1\n": "leading or trailing whitespace",
    "u-1\u2003": "leading or trailing whitespace",  # em space
    "x" * (MAX_ID_LENGTH + 1): f"{MAX_ID_LENGTH + 1} characters, more than {MAX_ID_LENGTH}",
    "학" * (MAX_ID_LENGTH + 1): f"{MAX_ID_LENGTH + 1} characters, more than {MAX_ID_LENGTH}",
    "u-\x001": "a control character",
    "u\x1f1": "a control character",
    "u\x1c": "a control character",  # Python strips it, polars does not: same verdict
    "u\x7f": "a control character",
    "u\x85x": "a control character",
    "\x1b[0m": "a control character",
    blob_text("FFFE"): "bytes, not text (x'FFFE')",
    blob_text(""): "bytes, not text (x'')",
}


@pytest.mark.parametrize("value", list(CASES), ids=[shown(v, 30) for v in CASES])
def test_python_and_polars_give_the_same_phrase(value):
    expected = CASES[value]
    assert id_problem(value) == expected
    got = pl.DataFrame({"v": [value]}).select(id_problem_expr("v")).item()
    assert got == expected


def test_a_null_is_no_verdict_and_the_blob_mark_is_a_control_character():
    assert (
        pl.DataFrame({"v": [None]}, schema={"v": pl.String}).select(id_problem_expr("v")).item()
        is None
    )
    assert unicodedata.category(BLOB_MARK) == "Cc"  # so no real id can start with it


def test_the_two_agree_on_a_random_sample_of_awkward_text():
    import random

    rng = random.Random(7)
    alphabet = "ab-_ \t\n\x00\x1a\x1c\x7f\u00a0\u2003\u3000é학"
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3_000)]
    polars_side = pl.DataFrame({"v": values}).select(id_problem_expr("v")).to_series().to_list()
    assert polars_side == [id_problem(v) for v in values]


def test_whitespace_is_what_polars_strips():
    python_space = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert python_space - set(WHITESPACE) == {"\x1c", "\x1d", "\x1e", "\x1f"}
    stripped = pl.Series(sorted(python_space)).str.strip_chars().to_list()
    assert {c for c, s in zip(sorted(python_space), stripped, strict=True) if s == ""} == set(
        WHITESPACE
    )
