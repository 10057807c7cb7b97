"""Read stored reports as their readers do and compare them with the warehouse (no Dagster).

The ``report_artifacts`` checks use this after a batch. For a sample of the week's stored
HTML reports it downloads each file from the store, extracts the text a person reads (the θ
headline and the key-indicator list) and compares it with what the warehouse holds for that
student, read with plain SQL:

- ``kpis_shown``: every KPI (I_t, E_t, P, S) that is a number in the student's
  ``weekly_kpi.kpis`` appears in the report as its sentence (``content.kpi_sentences`` of that
  row): never the "not computed" sentence, never the "no key indicators yet" line. (A report
  pipeline that lost the KPI object, as the embedded default once did, fails here.)
- ``theta_shown``: the θ headline equals the week's ``mirt_ability`` weekly row (θ ± SE to
  two decimals): the one θ of the student-week (docs/irt.md).

The HTML is read when the batch rendered it (its structure says which line is which); a
PDF-only batch is read from the PDF's extracted text (pypdf), compared with whitespace removed,
since a PDF line may wrap anywhere.

Reads go through the same store settings as the uploads: the same connect/read timeouts and
per-file deadline. A report that cannot be read is a problem of both checks; after
``breaker_failures`` consecutive reads the store did not answer, the store is judged down and
the rest is not read (``not_read``), so a down store costs at most that many file deadlines.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine

from seedtest_assets.core.mirt_ability import table as abilities
from seedtest_assets.core.report_artifacts.content import _f, kpi_sentences, labels
from seedtest_assets.core.report_artifacts.store import (
    StoreSettings,
    is_unreachable,
    open_store,
    report_key,
)
from seedtest_assets.core.source import users
from seedtest_assets.core.weekly_kpi import table as kpi_table

#: Reports read per batch at most (spread over the batch); enough to catch a systematic fault.
MAX_VERIFIED = 200
#: Listed problems in metadata.
MAX_LISTED = 20

_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class ReportText:
    """What a reader sees of one report: the θ headline and the KPI lines ("name: text")."""

    theta_headline: str | None
    kpi_lines: tuple[str, ...]
    body: str


def pdf_text(document: bytes) -> str:
    """The text of a PDF report (all pages), as pypdf extracts it."""
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(document)).pages)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _text(fragment: str) -> str:
    # Tags vanish without a space: "<strong>목표</strong>: …" reads "목표: …".
    return " ".join(html.unescape(_TAG.sub("", fragment)).split())


def report_text(document: str) -> ReportText:
    """The readable text of a rendered HTML report (charts, styles and fonts dropped)."""
    body = document[document.find("<body") :] if "<body" in document else document
    body = re.sub(r"<(svg|style|script)\b.*?</\1>", " ", body, flags=re.S)
    headline = re.search(r'<h3[^>]*id="theta-value"[^>]*>(.*?)</h3>', body, flags=re.S)
    kpis = re.search(r'<h2[^>]*id="kpis"[^>]*>.*?</h2>(.*?)(?=<h2|\Z)', body, flags=re.S)
    lines = (
        tuple(_text(li) for li in re.findall(r"<li[^>]*>(.*?)</li>", kpis.group(1), flags=re.S))
        if kpis
        else ()
    )
    return ReportText(_text(headline.group(1)) if headline else None, lines, _text(body))


@dataclass
class Verification:
    """Problems found in the sampled reports (``(user_id, what)``), and how many were read."""

    checked: int = 0
    with_kpis: int = 0
    with_theta: int = 0
    kpi_problems: list[tuple[str, str]] = field(default_factory=list)
    theta_problems: list[tuple[str, str]] = field(default_factory=list)
    #: Reports that could not be read back (``(user_id, error)``).
    read_problems: list[tuple[str, str]] = field(default_factory=list)
    #: Sampled reports left unread because the store was judged down (``store_down``).
    not_read: int = 0
    store_down: str = ""


def sample_ids(user_ids: Sequence[str], limit: int = MAX_VERIFIED) -> list[str]:
    """At most ``limit`` ids spread evenly over the sorted ids (all of them when fewer)."""
    ids = sorted(set(user_ids))
    if len(ids) <= limit:
        return ids
    step = len(ids) / limit
    return [ids[int(i * step)] for i in range(limit)]


def verify_reports(
    engine: Engine,
    week_start: date,
    user_ids: Sequence[str],
    store: StoreSettings,
    lang: str,
    fmt: str = "html",
    limit: int | None = MAX_VERIFIED,
) -> Verification:
    """Read the stored ``fmt`` reports of (a sample of) ``user_ids`` and compare (module doc).

    ``limit``: read at most this many, spread over the ids (None: every one).
    """
    ids = sample_ids(user_ids, limit) if limit is not None else sorted(set(user_ids))
    out = Verification()
    if not ids:
        return out
    with engine.connect() as conn:
        kpis = kpi_table.kpis_by_user(kpi_table.read_kpis(conn, week_start, ids))
        thetas = {
            r["user_id"]: (r["theta"], r["se"])
            for r in abilities.read_weekly(
                conn, week_start, ("user_id", "theta", "se"), ids
            ).iter_rows(named=True)
        }
        goals = {
            r["user_id"]: (r["goal_theta"], r["goal_date"])
            for r in users.read_goals(conn, ids).iter_rows(named=True)
        }
    L = labels(lang)
    reader = open_store(store)
    streak = 0  # consecutive reads the store did not answer
    for n, uid in enumerate(ids):
        try:
            raw = reader.get(report_key(store.prefix, week_start, uid, fmt))
        except Exception as exc:  # a report that cannot be read is a finding, not a crash
            out.read_problems.append((uid, f"not read back: {type(exc).__name__}: {exc}"[:500]))
            streak = streak + 1 if is_unreachable(exc) else 0
            if streak >= store.breaker_failures:
                out.not_read = len(ids) - n - 1
                out.store_down = (
                    f"store judged down after {streak} consecutive timeouts or connection "
                    f"failures to {store.target()}: {out.not_read} report(s) not read"
                )
                break
            continue
        streak = 0
        if fmt == "html":
            page = report_text(raw.decode("utf-8"))
            lines, body, headline = set(page.kpi_lines), page.body, page.theta_headline
        else:  # PDF: no structure, only text; compare without whitespace
            body = _squeeze(pdf_text(raw))
            lines, headline = None, None
        out.checked += 1
        row = kpis.get(uid)
        if isinstance(row, dict):
            out.with_kpis += 1
            goal_theta, goal_date = goals.get(uid, (None, None))
            expected = kpi_sentences(row, lang, goal_theta=goal_theta, goal_date=goal_date)
            for sentence in expected:
                value = row.get(sentence["key"])
                if not isinstance(value, int | float) or isinstance(value, bool):
                    continue  # null in the row: the report rightly says why
                line = f"{sentence['name']}: {sentence['text']}"
                shown = line in lines if lines is not None else _squeeze(line) in body
                if not shown:
                    out.kpi_problems.append((uid, f"{sentence['key']} missing: {line!r}"))
            missing = L["kpis_missing"]
            if (missing in body) if lines is not None else (_squeeze(missing) in body):
                out.kpi_problems.append((uid, "says the key indicators are not computed"))
        if uid in thetas:
            out.with_theta += 1
            theta, se = thetas[uid]
            want = L["theta_headline"].format(theta=_f(theta), se=_f(se))
            ok = headline == want if lines is not None else _squeeze(want) in body
            if not ok:
                displayed = headline if lines is not None else "(not in the PDF text)"
                out.theta_problems.append((uid, f"shows {displayed!r}, row {want!r}"))
    return out
