"""Rendering the weekly report: ``quarto/weekly_report.qmd`` -> HTML and PDF bytes (no Dagster).

The route (see quarto/README.md and docs/reports.md):

1. Once per batch (and language), the ``.qmd`` is converted by pandoc with the filter
   ``quarto/report.lua`` in *template mode* into two Jinja2 templates: a self-contained HTML
   page (``--embed-resources``, ``report.css``) and a typst document (``report-header.typ``,
   page and font settings from the ``.qmd``'s ``format.typst``). The converter is Quarto's own
   pandoc (``quarto pandoc``) when a ``quarto`` command exists, else pandoc 3 from PyPI
   ``pypandoc-binary``; choose with ``SEEDTEST_REPORT_RENDERER`` = ``auto`` (default) |
   ``quarto`` | ``pandoc``.
2. Per student, the report data (:func:`content.build_report`) fills both templates (Jinja2,
   ~1 ms) and typst compiles the PDF in-process (PyPI ``typst``, ~5-10 ms, fonts loaded once
   per process). Pandoc (~80 ms a run) never runs per student.
3. :mod:`.batch` spreads the students over a process pool and stores each file; this module
   only renders (bytes in, bytes out) and knows nothing of the store.

Korean: the PDF uses the fonts shipped in ``quarto/fonts`` (a subset of NanumSquare, OFL),
system fonts ignored, so output is the same on every machine. The HTML embeds, per batch, a
WOFF2 subset of the same font holding only the characters the batch can print (labels, names,
topics), with Korean system fonts as fallbacks.
"""

from __future__ import annotations

import base64
import functools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
import yaml

from seedtest_assets.core import settings

FORMATS = ("html", "pdf")
ROUTES = ("auto", "quarto", "pandoc")
ROUTE_ENV = "SEEDTEST_REPORT_RENDERER"
QUARTO_DIR_ENV = "SEEDTEST_QUARTO_DIR"
FONT_FAMILY = "SeedTest Hangul"
#: (file, CSS weight) of the shipped font, inside the fonts folder.
FONT_FILES = (("SeedTestHangul-Regular.ttf", 400), ("SeedTestHangul-Bold.ttf", 700))


def quarto_dir() -> Path:
    """The ``quarto/`` folder (``SEEDTEST_QUARTO_DIR`` overrides the repository's)."""
    override = settings.env(QUARTO_DIR_ENV)
    return Path(override).resolve() if override else Path(__file__).resolve().parents[3] / "quarto"


# --------------------------------------------------------------------------- route
def choose_route(preference: str | None = None) -> str:
    """``"quarto"`` or ``"pandoc"``: ``preference`` (or ``SEEDTEST_REPORT_RENDERER``).

    ``auto`` picks Quarto when a ``quarto`` command is on PATH.

    Raises:
        ValueError: unknown preference, or ``quarto`` requested but not installed.
    """
    pref = (preference or settings.env(ROUTE_ENV) or "auto").strip().lower()
    if pref not in ROUTES:
        raise ValueError(f"{ROUTE_ENV} must be one of {ROUTES}, got {pref!r}")
    has_quarto = shutil.which("quarto") is not None
    if pref == "quarto" and not has_quarto:
        raise ValueError("renderer 'quarto' requested but no quarto command is on PATH")
    if pref == "auto":
        return "quarto" if has_quarto else "pandoc"
    return pref


def pandoc_command(route: str) -> list[str]:
    """The command that runs pandoc on this route."""
    if route == "quarto":
        return [shutil.which("quarto") or "quarto", "pandoc"]
    import pypandoc

    return [pypandoc.get_pandoc_path()]


# --------------------------------------------------------------------------- conversion
@dataclass(frozen=True)
class Templates:
    """The batch's two Jinja2 templates (delimiters ``{{= =}}`` / ``{%= =%}``) and provenance."""

    html: str
    typst: str
    route: str
    font_dir: str
    lang: str

    def with_html_head(self, extra: str) -> Templates:
        """A copy with ``extra`` inserted before ``</head>`` (e.g. the batch's @font-face)."""
        head, sep, tail = self.html.rpartition("</head>")
        if not sep:
            raise ValueError("HTML template has no </head>")
        return replace(self, html=head + extra + sep + tail)


def read_front_matter(qmd: Path) -> dict[str, Any]:
    """The YAML front matter of a ``.qmd`` file."""
    text = qmd.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    _, block, _ = text.split("---", 2)
    return yaml.safe_load(block) or {}


#: Per-format options of the ``.qmd`` passed as pandoc arguments rather than metadata.
_ARG_OPTIONS = {"css", "embed-resources", "include-in-header", "font-paths"}


def pandoc_args(qmd: Path, fmt: str, metadata_file: Path) -> list[str]:
    """Arguments converting ``qmd`` to ``fmt`` ("html" or "typst") with the report filter."""
    front = read_front_matter(qmd)
    opts = (front.get("format") or {}).get(fmt) or {}
    folder = qmd.parent
    args = [
        str(qmd),
        "--from=markdown",
        f"--to={'html5' if fmt == 'html' else 'typst'}",
        "--standalone",
        "--wrap=none",  # a wrapped line inside a typst list item would end the item
        f"--lua-filter={folder / 'report.lua'}",
        f"--metadata-file={metadata_file}",
        f"--resource-path={folder}",
    ]
    if fmt == "html":
        args.append("--embed-resources")  # the page is always self-contained
        css = opts.get("css")
        for c in [css] if isinstance(css, str) else css or []:
            args.append(f"--css={folder / c}")
    else:
        header = opts.get("include-in-header")
        for h in [header] if isinstance(header, str) else header or []:
            args.append(f"--include-in-header={folder / h}")
    return args


def format_metadata(qmd: Path, fmt: str) -> dict[str, Any]:
    """The ``.qmd``'s ``format.<fmt>`` options that are pandoc variables."""
    opts = (read_front_matter(qmd).get("format") or {}).get(fmt) or {}
    return {k: v for k, v in opts.items() if k not in _ARG_OPTIONS}


def run_pandoc(
    route: str,
    qmd: Path,
    fmt: str,
    metadata: Mapping[str, Any],
    overrides: Mapping[str, str] | None = None,
) -> str:
    """One pandoc run (``quarto pandoc`` on the Quarto route); returns the output text.

    ``metadata`` (the format options) goes in a metadata file, which the document's own YAML
    overrides; ``overrides`` (``lang``, ``report-mode``, ``report-data``) go as ``-M``, which
    override the document.
    """
    with tempfile.TemporaryDirectory(prefix="seedtest-report-") as tmp:
        meta_file = Path(tmp) / "metadata.yaml"
        meta_file.write_text(yaml.safe_dump(dict(metadata), allow_unicode=True), "utf-8")
        out = Path(tmp) / ("out.html" if fmt == "html" else "out.typ")
        cmd = [*pandoc_command(route), *pandoc_args(qmd, fmt, meta_file), f"--output={out}"]
        cmd += [f"--metadata={k}:{v}" for k, v in (overrides or {}).items()]
        proc = subprocess.run(cmd, cwd=qmd.parent, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"pandoc ({route}) failed for {fmt}: {proc.stderr.strip()}")
        return out.read_text(encoding="utf-8")


def font_dir_of(qmd: Path) -> Path:
    """The fonts folder named by the ``.qmd``'s ``format.typst.font-paths``."""
    opts = (read_front_matter(qmd).get("format") or {}).get("typst") or {}
    paths = opts.get("font-paths") or "fonts"
    first = paths if isinstance(paths, str) else paths[0]
    return (qmd.parent / first).resolve()


@functools.lru_cache(maxsize=8)
def _convert_cached(qmd: str, mtimes: tuple[float, ...], lang: str, route: str) -> Templates:
    path = Path(qmd)
    overrides = {"lang": lang, "report-mode": "template"}
    html = run_pandoc(route, path, "html", format_metadata(path, "html"), overrides)
    typ = run_pandoc(route, path, "typst", format_metadata(path, "typst"), overrides)
    return Templates(html=html, typst=typ, route=route, font_dir=str(font_dir_of(path)), lang=lang)


def convert_templates(lang: str, route: str | None = None, qmd: Path | None = None) -> Templates:
    """Convert the ``.qmd`` into the HTML and typst templates (2 pandoc runs, ~0.2 s).

    Cached per process while the ``.qmd``, filter, CSS and typst header are unchanged.
    """
    qmd = (qmd or quarto_dir() / "weekly_report.qmd").resolve()
    route = choose_route(route)
    folder = qmd.parent
    watched = [qmd, *(folder / n for n in ("report.lua", "report.css", "report-header.typ"))]
    mtimes = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in watched)
    return _convert_cached(str(qmd), mtimes, lang, route)


# --------------------------------------------------------------------------- fonts in HTML
@functools.lru_cache(maxsize=4)
def font_face_css(charset: str, font_dir: str) -> str:
    """``<style>`` with the shipped font as WOFF2 subsets of ``charset``, base64-inlined."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    rules = []
    for name, weight in FONT_FILES:
        font = TTFont(Path(font_dir) / name)
        options = subset.Options()
        options.flavor = "woff2"
        options.layout_features = ["*"]
        options.name_IDs = ["*"]  # keep the copyright and licence records (OFL)
        sub = subset.Subsetter(options)
        sub.populate(text=charset)
        sub.subset(font)
        import io

        buf = io.BytesIO()
        font.flavor = "woff2"
        font.save(buf)
        b64 = base64.b64encode(buf.getvalue()).decode("ascii")
        rules.append(
            f"@font-face{{font-family:'{FONT_FAMILY}';font-weight:{weight};font-style:normal;"
            f"src:url(data:font/woff2;base64,{b64}) format('woff2');}}"
        )
    return "<style>" + "".join(rules) + "</style>\n"


# --------------------------------------------------------------------------- fill per student
def typst_str(value: Any) -> str:
    """``value`` as a typst string literal (inserted as text, never parsed as markup)."""
    s = "" if value is None else str(value)
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{s}"'


def _is_hangul(c: str) -> bool:
    return 0xAC00 <= ord(c) <= 0xD7AF


def typst_text(value: Any) -> str:
    """``value`` as a typst expression printing it as text, with every word that holds Hangul
    in a ``box``: lines then break between Korean words, never inside one (CSS ``word-break:
    keep-all``, as the HTML does; typst has no such option and breaks between any two
    syllables). Without Hangul, the plain string literal of :func:`typst_str`.

    Boxes rather than a ``show regex(...): box`` rule: that rule recurses once per match and
    fails with "maximum grouping depth exceeded" on a paragraph of a few hundred words.
    ``report.lua`` does the same in data mode (``typst_text`` there).
    """
    s = "" if value is None else str(value)
    if not any(_is_hangul(c) for c in s):
        return typst_str(s)
    parts: list[str] = []
    plain = ""
    for token in re.split(r"(\s+)", s):
        if token and not token.isspace() and any(_is_hangul(c) for c in token):
            if plain:
                parts.append(typst_str(plain))
                plain = ""
            parts.append(f"box({typst_str(token)})")
        else:
            plain += token
    if plain:
        parts.append(typst_str(plain))
    return "{" + "; ".join(parts) + "}"


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,  # a path the data lacks is an error, not ""
        variable_start_string="{{=",
        variable_end_string="=}}",
        block_start_string="{%=",
        block_end_string="=%}",
        comment_start_string="{#=",
        comment_end_string="=#}",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["typst_str"] = typst_str
    env.filters["typst_text"] = typst_text
    return env


class ReportRenderer:
    """Fills the batch's templates per student: HTML text and PDF via in-process typst."""

    def __init__(self, templates: Templates) -> None:
        self.templates = templates
        self._html = _env(autoescape=True).from_string(templates.html)
        self._typst = _env(autoescape=False).from_string(templates.typst)
        self._compiler: Any = None  # typst.Compiler, created on first use

    def html(self, data: Mapping[str, Any]) -> bytes:
        """The self-contained HTML page (UTF-8)."""
        return self._html.render(data).encode("utf-8")

    def typst_source(self, data: Mapping[str, Any]) -> str:
        """The typst document of one student."""
        return self._typst.render(data)

    def pdf(self, data: Mapping[str, Any]) -> bytes:
        """The PDF (typst compiler kept per process: fonts are parsed once)."""
        import typst

        if self._compiler is None:
            self._compiler = typst.Compiler(
                font_paths=[self.templates.font_dir], ignore_system_fonts=True
            )
        return self._compiler.compile(input=self.typst_source(data).encode("utf-8"), format="pdf")

    def render(self, data: Mapping[str, Any], fmt: str) -> bytes:
        """``fmt`` = "html" or "pdf"."""
        if fmt == "html":
            return self.html(data)
        if fmt == "pdf":
            return self.pdf(data)
        raise ValueError(f"unknown format {fmt!r}")


# --------------------------------------------------------------------------- per-report route
_TYPST_CLI = (
    "import sys, typst; "
    "typst.compile(sys.argv[1], output=sys.argv[2], font_paths=[sys.argv[3]], "
    "ignore_system_fonts=True)"
)


def render_via_subprocesses(
    data: Mapping[str, Any], workdir: Path, route: str | None = None, qmd: Path | None = None
) -> tuple[bytes, bytes]:
    """One report the way Quarto renders a document: new processes per report.

    pandoc in *data mode* (the filter fills the values) to HTML, pandoc to typst, then typst to
    PDF in its own process (a Python process with typst-py: no typst CLI is installable here).
    The baseline of ``benchmarks/reports.py`` and the reference the fast route is tested
    against. Returns (html, pdf) bytes.
    """
    import json
    import sys

    qmd = (qmd or quarto_dir() / "weekly_report.qmd").resolve()
    route = choose_route(route)
    workdir.mkdir(parents=True, exist_ok=True)
    data_file = workdir / "data.json"
    data_file.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    overrides = {"lang": str(data.get("lang", "ko")), "report-data": str(data_file)}
    html = run_pandoc(route, qmd, "html", format_metadata(qmd, "html"), overrides)
    typ = run_pandoc(route, qmd, "typst", format_metadata(qmd, "typst"), overrides)
    typ_file, pdf_file = workdir / "report.typ", workdir / "report.pdf"
    typ_file.write_text(typ, "utf-8")
    subprocess.run(
        [sys.executable, "-c", _TYPST_CLI, str(typ_file), str(pdf_file), str(font_dir_of(qmd))],
        check=True,
        capture_output=True,
    )
    return html.encode("utf-8"), pdf_file.read_bytes()
