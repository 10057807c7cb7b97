"""What an identifier of the product may be (students, organisations, sessions, items, topics).

The ids are the product's own strings (``"test-user-123"``, ``"org123"``, a JWT ``sub``) and
are kept exactly as the product wrote them: never trimmed, case-folded or Unicode-normalised,
so ``"U1"``, ``"u1"`` and the NFD spelling of an accented id are distinct ids, as they are in
the product's own tables (PostgreSQL compares text byte for byte). An id that no one could
have meant is refused where it enters (validation quarantines the attempt with reason
``bad_id``), never rewritten into another id:

- empty, or whitespace only;
- leading or trailing whitespace (a copy-paste accident: ``"u-1 "`` would silently be a
  different student from ``"u-1"``);
- longer than :data:`MAX_ID_LENGTH` characters (an OIDC ``sub`` has at most 255);
- a control character (Unicode category ``Cc``: tabs, newlines, NUL), which no report, file
  name or UI can show.

Anything else is an id, including text that looks like SQL (``"1; DROP TABLE users"``) or a
path (``"../../etc"``): ids only ever travel as bound parameters, and the report store
encodes them into keys (:func:`seedtest_assets.core.report_artifacts.store.report_key`).
"""

from __future__ import annotations

import unicodedata

import polars as pl

#: Longest id (characters) accepted.
MAX_ID_LENGTH = 255

#: The id columns of the product's data.
ID_COLUMNS = ("user_id", "org_id", "session_id", "item_id", "topic_id")


def id_problem(value: str) -> str | None:
    """Why ``value`` is not a usable id (a short phrase), or None when it is one."""
    if value == "":
        return "empty"
    if value.strip() == "":
        return "whitespace only"
    if len(value) > MAX_ID_LENGTH:
        return f"{len(value):,} characters, more than {MAX_ID_LENGTH}"
    if value != value.strip():
        return "leading or trailing whitespace"
    for char in value:
        if unicodedata.category(char) == "Cc":
            return f"the control character {char!r}"
    return None


def id_problem_expr(column: str) -> pl.Expr:
    """:func:`id_problem` of a text column as a polars expression (null: a usable id or a
    null value; the caller handles nulls as missing)."""
    v = pl.col(column)
    n = v.str.len_chars()
    return (
        pl.when(v == "")
        .then(pl.lit("empty"))
        .when(v.str.strip_chars() == "")
        .then(pl.lit("whitespace only"))
        .when(n > MAX_ID_LENGTH)
        .then(pl.format("{} characters, more than {}", n, pl.lit(MAX_ID_LENGTH)))
        .when(v.str.strip_chars() != v)
        .then(pl.lit("leading or trailing whitespace"))
        .when(v.str.contains(r"\p{Cc}"))
        .then(pl.lit("a control character"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters, for messages and logs."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
