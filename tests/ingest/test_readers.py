from pathlib import Path

import pytest

from kb.errors import IngestError
from kb.ingest.readers import read, reader_for
from tests.pdfs import write_pdf


def test_markdown_sections_keep_heading_path_and_line_numbers(tmp_path):
    text = "# Guide\n\nIntro line.\n\n## Setup\n\nStep one.\nStep two.\n\n```\n# not a heading\n```\n\n### Deep\n\nDeep text.\n"
    path = tmp_path / "g.md"
    path.write_text(text)
    doc = read(path, path.read_bytes())
    assert doc.title == "Guide"
    assert [(s.heading, s.first_line) for s in doc.sections] == [
        ("Guide", 3),
        ("Guide > Setup", 7),
        ("Guide > Setup > Deep", 16),
    ]
    assert "# not a heading" in doc.sections[1].text
    lines = text.splitlines()
    assert lines[doc.sections[1].first_line - 1] == "Step one."


def test_html_keeps_visible_text_and_headings_drops_scripts_and_styles(tmp_path):
    html = """<html><head><title>T</title><style>.x{color:red}</style><script>var secret=1;</script></head>
    <body><h1>Main</h1><p>Para <b>bold</b> text.</p><h2>Sub</h2><ul><li>one</li><li>two</li></ul>
    <noscript>enable js</noscript><script>alert('x')</script></body></html>"""
    path = tmp_path / "p.html"
    path.write_text(html)
    doc = read(path, path.read_bytes())
    assert doc.title == "T"
    everything = " ".join(s.text for s in doc.sections)
    assert "Para bold text." in everything
    assert "secret" not in everything and "alert" not in everything and "color" not in everything
    assert "enable js" not in everything
    assert [s.heading for s in doc.sections] == ["Main", "Main > Sub"]


def test_pdf_sections_are_pages_with_numbers(tmp_path):
    path = write_pdf(tmp_path / "m.pdf", ["First page about apples.", "", "Third page about pears."])
    doc = read(path, path.read_bytes())
    assert [(s.page, s.text.strip()) for s in doc.sections] == [
        (1, "First page about apples."),
        (3, "Third page about pears."),
    ]
    assert doc.warnings == ["pages without text: 2"]


def test_rst_titles_become_headings(tmp_path):
    path = tmp_path / "g.rst"
    path.write_text("Title\n=====\n\nIntro.\n\nPart\n----\n\nBody.\n")
    doc = read(path, path.read_bytes())
    assert [(s.heading, s.text) for s in doc.sections] == [("Title", "Intro."), ("Title > Part", "Body.")]


@pytest.mark.parametrize(
    "encoding, text",
    [
        ("latin-1", "Crème brûlée, café au lait et pâtisserie française."),
        ("cp1251", "Пчёлы собирают нектар и пыльцу с цветов летом и осенью каждый год."),
        ("shift_jis", "ミツバチは花から蜜を集めて巣に運びます。女王蜂は一日に二千個の卵を産みます。"),
        ("utf-16", "UTF-16 with a byte-order mark: naïve café."),
    ],
)
def test_legacy_encodings_are_detected(tmp_path, encoding, text):
    path = tmp_path / "enc.txt"
    path.write_bytes(text.encode(encoding))
    doc = read(path, path.read_bytes())
    assert doc.sections[0].text == text


def test_binary_data_with_text_extension_is_refused(tmp_path):
    path = tmp_path / "fake.txt"
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(IngestError, match="binary"):
        read(path, path.read_bytes())


def test_unknown_types_have_no_reader_and_extensionless_files_are_text():
    assert reader_for(Path("photo.png")) is None
    assert reader_for(Path("README")) is not None


def test_corrupt_pdf_is_a_clear_ingest_error(tmp_path):
    path = tmp_path / "bad.pdf"
    path.write_bytes(b"%PDF-1.4\n this is not really a pdf")
    with pytest.raises(IngestError, match="unreadable PDF"):
        read(path, path.read_bytes())


def test_markdown_file_of_only_a_heading_is_text(tmp_path):
    path = tmp_path / "alpha.md"
    path.write_text("# Alpha notes\n")
    doc = read(path, path.read_bytes())
    assert [(s.text, s.first_line) for s in doc.sections] == [("Alpha notes", 1)]
