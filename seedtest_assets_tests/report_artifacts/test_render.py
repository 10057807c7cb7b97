"""The template route: .qmd -> templates (pandoc, once) -> HTML and PDF per student."""

import io
import os
import stat
from datetime import datetime

import pytest
from pypdf import PdfReader

from seedtest_assets.report_artifacts import render
from seedtest_assets.report_artifacts.content import build_report, report_charset
from seedtest_assets_tests.report_artifacts.helpers import KOREAN_NAME, sample_inputs

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


def test_values_are_text_never_markup(templates_ko):
    evil = '*굵게* #let x = 1; <script>alert("x")</script> [a] \\ $y$ @ref'
    data = build_report(sample_inputs(name=evil), "ko", GEN)
    r = render.ReportRenderer(templates_ko)
    html = r.html(data).decode("utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    text = pdf_text(r.pdf(data))
    assert '*굵게* #let x = 1; <script>alert("x")</script> [a] \\ $y$ @ref' in text


def test_english_labels():
    t = render.convert_templates("en", "pandoc")
    data = build_report(sample_inputs(), "en", GEN)
    r = render.ReportRenderer(t)
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
