"""The template route: .qmd -> templates (pandoc, once) -> HTML and PDF per student."""

import io
import os
import stat
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from pypdf import PdfReader

from seedtest_assets.core.report_artifacts import render
from seedtest_assets.core.report_artifacts.content import (
    StudentInputs,
    TopicStats,
    build_report,
    report_charset,
)
from seedtest_assets_tests.report_helpers import KOREAN_NAME, KPIS, sample_inputs

GEN = datetime(2026, 11, 23, 4, 0)


@pytest.fixture(scope="module")
def templates_ko():
    t = render.convert_templates("ko", "pandoc")
    chars = report_charset(
        "ko", [KOREAN_NAME, "서울 한빛학원", "대수방정식과 부등식확률과 통계미적분"]
    )
    return t.with_html_head(render.font_face_css(chars, t.font_dir))


def pdf_text(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_shows_the_korean_name_theta_and_charts(templates_ko):
    data = build_report(sample_inputs(), "ko", GEN)
    pdf = render.ReportRenderer(templates_ko).pdf(data)
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert KOREAN_NAME in text and "서울 한빛학원" in text
    assert "θ 0.52 ± 0.21" in text  # the week's θ with its SE
    squeezed = "".join(text.split())  # a PDF line may wrap anywhere
    assert "목표θ1.20에도달할가능성72%" in squeezed
    assert "이θ는최근12주동안푼모든문제로그린성장선에서읽은이번주마지막날의실력" in squeezed
    assert "점선:목표θ1.20" in squeezed  # chart caption
    assert "09-28" in text and "41분" in text  # text inside the two SVG charts
    assert "미적분" in text  # practise next
    fonts = {
        str(f.get("/BaseFont"))
        for page in PdfReader(io.BytesIO(pdf)).pages
        for f in (page["/Resources"].get("/Font") or {}).values()
        for f in [f.get_object()]
    }
    assert any("SeedTestHangul" in f for f in fonts), fonts


def test_html_is_self_contained_with_svg_charts_and_korean(templates_ko):
    data = build_report(sample_inputs(), "ko", GEN)
    html = render.ReportRenderer(templates_ko).html(data).decode("utf-8")
    assert html.count("<svg") == 2 and "<polygon" in html
    assert KOREAN_NAME in html and "이번 주 실력 (θ)" in html
    assert '<html xmlns="http://www.w3.org/1999/xhtml" lang="ko"' in html
    assert "@font-face{font-family:'SeedTest Hangul'" in html and "font/woff2;base64," in html
    assert "<title>김민서 · 2026-11-16 ~ 2026-11-22 주간 학습 리포트</title>" in html
    assert "{{=" not in html and "{%=" not in html and "<link" not in html  # all filled, inline
    # Typst-only attributes stay out of the HTML; a chart is a block, not inside a <p>.
    assert "typst:" not in html and "<p><div" not in html
    assert html.count('<div class="caption">') == 2


def test_values_are_text_never_markup(templates_ko):
    evil = '*굵게* #let x = 1; <script>alert("x")</script> [a] \\ $y$ @ref'
    data = build_report(sample_inputs(name=evil), "ko", GEN)
    r = render.ReportRenderer(templates_ko)
    html = r.html(data).decode("utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    text = pdf_text(r.pdf(data))
    assert '*굵게* #let x = 1; <script>alert("x")</script> [a] \\ $y$ @ref' in text


def test_english_labels(templates_en):
    data = build_report(sample_inputs(), "en", GEN)
    r = render.ReportRenderer(templates_en)
    text = pdf_text(r.pdf(data))
    assert "Weekly learning report" in text
    assert "72% chance of reaching your goal θ 1.20 by 2026-12-20" in " ".join(text.split())
    assert 'lang="en"' in r.html(data).decode()


def test_per_report_route_renders_the_same_text(templates_ko, tmp_path):
    """Data mode (pandoc per report, what Quarto does) and template mode agree."""
    data = build_report(sample_inputs(), "ko", GEN)
    html, pdf = render.render_via_subprocesses(data, tmp_path, "pandoc")
    fast = render.ReportRenderer(templates_ko)
    assert pdf_text(pdf) == pdf_text(fast.pdf(data))
    assert html.decode().count("<svg") == 2 and KOREAN_NAME in html.decode()


def test_route_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no quarto here
    assert render.choose_route(None) == "pandoc"
    monkeypatch.setenv(render.ROUTE_ENV, "pandoc")
    assert render.choose_route(None) == "pandoc"
    with pytest.raises(ValueError, match="no quarto"):
        render.choose_route("quarto")
    with pytest.raises(ValueError, match="must be one of"):
        render.choose_route("latex")


def test_quarto_route_uses_quarto_pandoc(monkeypatch, tmp_path):
    """With a ``quarto`` command on PATH, auto picks it and converts with ``quarto pandoc``."""
    import pypandoc

    log = tmp_path / "calls"
    fake = tmp_path / "quarto"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        '[ "$1" = pandoc ] || exit 2\n'
        "shift\n"
        f'exec {pypandoc.get_pandoc_path()} "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(render.ROUTE_ENV, raising=False)
    assert render.choose_route(None) == "quarto"
    t = render.convert_templates("ko")
    assert t.route == "quarto" and "{{= student.name =}}" in t.html
    assert log.read_text().count("pandoc ") == 2  # html and typst, once each


def _shape(v):
    """The key structure of report data (values ignored)."""
    if isinstance(v, dict):
        return {k: _shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_shape(v[0])] if v else []
    return None


def test_sample_data_matches_the_content_and_renders_with_the_documents_params():
    """``quarto/sample-data.json`` (the .qmd's default ``params.data``) has the shape
    :func:`build_report` produces, and the document renders from it as it stands."""
    import json

    qmd = render.quarto_dir() / "weekly_report.qmd"
    sample = json.loads((qmd.parent / "sample-data.json").read_text("utf-8"))
    assert _shape(sample) == _shape(build_report(sample_inputs(), "ko", GEN))
    assert render.read_front_matter(qmd)["params"]["data"] == "sample-data.json"
    html = render.run_pandoc("pandoc", qmd, "html", render.format_metadata(qmd, "html"))
    assert KOREAN_NAME in html and html.count("<svg") == 2


@pytest.fixture(scope="module")
def templates_en():
    return render.convert_templates("en", "pandoc")


def varied_students() -> dict[str, StudentInputs]:
    """Students unlike each other, each of which must fit one A4 page."""
    base = sample_inputs()
    week = base.week_start
    long_names = [
        ("방정식과 부등식", "Equations and inequalities"),
        ("확률과 통계", "Probability and statistics"),
        ("지수와 로그", "Exponents and logarithms"),
        ("삼각함수", "Trigonometric functions"),
        ("경우의 수", "Counting"),
        ("미적분", "Calculus"),
        ("기하", "Geometry"),
        ("함수", "Functions"),
        ("수열", "Sequences"),
        ("벡터", "Vectors"),
        ("행렬", "Matrices"),
        ("대수", "Algebra"),
    ]
    many = tuple(
        TopicStats(i, k, e, 12 - i, 3 + i % 5, 14.0 - i, 30, 12 + i, 0.4 - 0.2 * i, 0.3)
        for i, (k, e) in enumerate(long_names)
    )
    idle = tuple(replace(t, week_attempts=0, week_correct=0, week_minutes=0.0) for t in base.topics)
    falling = {**KPIS, "I_t": -0.06, "I_t_se": 0.03, "E_t": -0.41, "P": 0.0004, "S": 0.4963}
    return {
        "full": base,
        "no goal": replace(
            base, goal_theta=None, goal_date=None, kpis={**KPIS, "P": None, "goal_theta": None}
        ),
        "one week": replace(base, history=base.history[-1:], kpis={**KPIS, "S": 0.5}),
        "inactive this week": replace(
            base, topics=idle, active_days=0, kpis={**KPIS, "E_t": None, "S": 0.83}
        ),
        "missing KPIs": replace(base, kpis=None, growth=None),
        "new student": replace(base, kpis=None, history=(), topics=(), active_days=0),
        "top student": replace(
            base,
            history=tuple((w, t + 2.8, s) for w, t, s in base.history),
            goal_theta=3.3,
            kpis={**KPIS, "P": 0.9991, "S": 0.02},
        ),
        "struggling, falling, goal passed, 12 topics": replace(
            base,
            name="황보서연우",
            org="서울 한빛학원 강남 본원 고등부",
            goal_date=week - timedelta(days=10),
            history=tuple((w, t - 2.9, s) for w, t, s in base.history),
            topics=many,
            active_days=7,
            kpis={
                **falling,
                "goal_date": (week - timedelta(days=10)).isoformat(),
                "weeks_to_goal": -2.4,
            },
        ),
        "falling, 8 topics": replace(base, topics=many[:8], active_days=5, kpis=falling),
    }


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_varied_students_fit_one_a4_page(lang, templates_ko, templates_en):
    """Reviewer: 571 of 849 PDFs spilled onto a second page holding <= 5 lines."""
    r = render.ReportRenderer(templates_ko if lang == "ko" else templates_en)
    pages = {}
    for what, inp in varied_students().items():
        reader = PdfReader(io.BytesIO(r.pdf(build_report(inp, lang, GEN))))
        box = reader.pages[0].mediabox
        assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4
        pages[what] = len(reader.pages)
    assert pages == dict.fromkeys(pages, 1)


def test_a_report_that_runs_over_numbers_its_pages(templates_en):
    """The fallback is deliberate: page numbers "1 / 2" appear only past one page."""
    inp = replace(sample_inputs(), org=" ".join(["Hanbit Academy"] * 900))
    reader = PdfReader(
        io.BytesIO(render.ReportRenderer(templates_en).pdf(build_report(inp, "en", GEN)))
    )
    assert len(reader.pages) > 1
    assert f"1 / {len(reader.pages)}" in reader.pages[0].extract_text()
    one = PdfReader(
        io.BytesIO(
            render.ReportRenderer(templates_en).pdf(build_report(sample_inputs(), "en", GEN))
        )
    )
    assert len(one.pages) == 1 and "1 / 1" not in one.pages[0].extract_text()


def test_typst_text_boxes_korean_words():
    assert render.typst_text('plain "x"') == render.typst_str('plain "x"')
    assert render.typst_text("이번 주에는 7문제를, ok") == (
        '{box("이번"); " "; box("주에는"); " "; box("7문제를,"); " ok"}'
    )


def test_korean_lines_break_between_words_and_long_text_renders(templates_ko):
    """Typst breaks Korean between any two syllables; the report keeps words whole, as the
    HTML's ``word-break: keep-all`` does, and survives a very long value."""
    word = "한빛수학전문학원"

    def header_words(renderer, k):
        data = build_report(replace(sample_inputs(), org=" ".join([word] * k)), "ko", GEN)
        text = PdfReader(io.BytesIO(renderer.pdf(data))).pages[0].extract_text()
        start = text.index(word[:2])
        header = text[start : text.index("2026-11-16", start)]
        return header.replace("·", " ").split(), "\n" in header

    boxed = render.ReportRenderer(templates_ko)
    plain = render.ReportRenderer(templates_ko)  # the same template, values without boxes
    plain._typst.environment.filters["typst_text"] = render.typst_str
    plain._typst = plain._typst.environment.from_string(templates_ko.typst)
    wrapped = broken_without_boxes = False
    for k in range(5, 12):
        words, wraps = header_words(boxed, k)
        assert words == [word] * k, k  # every line ends at a word boundary
        wrapped |= wraps
        broken_without_boxes |= header_words(plain, k)[0] != [word] * k
    assert wrapped and broken_without_boxes  # the check is not vacuous
    long = replace(sample_inputs(), org=" ".join(["서울 한빛학원"] * 600))
    pdf = render.ReportRenderer(templates_ko).pdf(build_report(long, "ko", GEN))
    assert len(PdfReader(io.BytesIO(pdf)).pages) > 1


def test_rendering_knows_nothing_of_the_store():
    """render.py turns report data into bytes; storing them is the batch's job (batch.py)."""
    import ast
    from pathlib import Path

    from seedtest_assets.core.report_artifacts import render as render_module

    tree = ast.parse(Path(render_module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not {m for m in imported if m.endswith((".store", ".guard", ".batch"))}, imported
    assert not hasattr(render_module, "render_batch")
