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
  name or UI can show;
- bytes, not text: SQLite stores any value in any column, and its readers hand a BLOB over as
  :func:`blob_text` (``BLOB_MARK`` + hex), which no id can be, so it is quarantined too.

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


#: Whitespace, as Unicode's White_Space property defines it (what polars' ``strip_chars``
#: strips): spelled out because Python's ``str.strip`` also strips U+001C..U+001F, and the two
#: halves of the rule must agree on every value.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

#: The first character of :func:`blob_text` (ASCII SUB, a control character: never in an id).
BLOB_MARK = "\x1a"


def blob_text(hex_digits: str) -> str:
    """The text a SQLite reader puts where a BLOB was stored in a text column: ``BLOB_MARK``
    and the bytes in hex (what the SQL ``char(26) || hex(col)`` gives)."""
    return BLOB_MARK + hex_digits


def id_problem(value: str) -> str | None:
    """Why ``value`` is not a usable id (a short phrase), or None when it is one."""
    if value.startswith(BLOB_MARK):
        return f"bytes, not text (x'{value[1:]}')"
    if value == "":
        return "empty"
    stripped = value.strip(WHITESPACE)
    if stripped == "":
        return "whitespace only"
    if len(value) > MAX_ID_LENGTH:
        return f"{len(value)} characters, more than {MAX_ID_LENGTH}"
    if value != stripped:
        return "leading or trailing whitespace"
    if any(unicodedata.category(char) == "Cc" for char in value):
        return "a control character"
    return None


def id_problem_expr(column: str) -> pl.Expr:
    """:func:`id_problem` of a text column as a polars expression (null: a usable id or a
    null value; the caller handles nulls as missing). The same verdict and phrase for every
    value (tested side by side)."""
    v = pl.col(column)
    n = v.str.len_chars()
    return (
        pl.when(v.str.starts_with(BLOB_MARK))
        .then(pl.format("bytes, not text (x'{}')", v.str.slice(1)))
        .when(v == "")
        .then(pl.lit("empty"))
        .when(v.str.strip_chars(WHITESPACE) == "")
        .then(pl.lit("whitespace only"))
        .when(n > MAX_ID_LENGTH)
        .then(pl.format("{} characters, more than {}", n, pl.lit(MAX_ID_LENGTH)))
        .when(v.str.strip_chars(WHITESPACE) != v)
        .then(pl.lit("leading or trailing whitespace"))
        .when(v.str.contains(r"\p{Cc}"))
        .then(pl.lit("a control character"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters, for messages and logs."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
