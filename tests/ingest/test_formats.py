"""The formats people keep: each file is written by its own library (python-docx,
python-pptx, odfpy, ebooklib, json, csv, email) and read back through the registry; the
end-to-end tests ingest them and search with the HashEmbedder test double."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from kb.errors import IngestError
from kb.ingest.readers import archive, read
from tests.formats import lie_about_size, rezip, write_docx, write_epub, write_odt, write_pptx, zip_bomb
from tests.pdfs import write_pdf


def _read(path: Path):
    return read(path, path.read_bytes())


def _outline(doc) -> list[tuple]:
    return [(s.heading, s.locator, s.text) for s in doc.sections]


# Word


def test_docx_sections_follow_heading_styles_and_keep_tables(tmp_path):
    doc = _read(write_docx(tmp_path / "manual.docx"))
    assert doc.title == "Hive Manual" and doc.warnings == []
    assert _outline(doc) == [
        ("Hive Manual", None, "How to keep bees without losing them."),
        (
            "Hive Manual > Inspection",
            None,
            "Bees collect nectar and pollen from flowers. The queen lays eggs in the brood comb.",
        ),
        ("Hive Manual > Inspection > Frames", None, "Frame | State\n\n3 | capped brood"),
        ("Hive Manual > Winter", None, "Feed fondant when the stores run low."),
    ]


def _element(tag: str, **attrs: str):
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    element = OxmlElement(tag)
    for name, value in attrs.items():
        element.set(qn(f"w:{name}"), value)
    return element


def test_docx_outline_levels_custom_styles_and_tracked_changes(tmp_path):
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    custom = document.styles.add_style("Chapter Heading", WD_STYLE_TYPE.PARAGRAPH)
    custom.element.get_or_add_pPr().append(_element("w:outlineLvl", val="0"))  # level 1 by outline only
    document.add_paragraph("Swarm control", style="Chapter Heading")
    direct = document.add_paragraph("Queen cells")
    direct._p.get_or_add_pPr().append(_element("w:outlineLvl", val="1"))  # a level-2 heading set by hand
    edited = document.add_paragraph("Split the colony ")
    inserted = _element("w:ins", id="1", author="a", date="2024-01-01T00:00:00Z")
    run = _element("w:r")
    text = _element("w:t")
    text.text = "before the swarm leaves."
    run.append(text)
    inserted.append(run)
    deleted = _element("w:del", id="2", author="a", date="2024-01-01T00:00:00Z")
    gone_run = _element("w:r")
    gone = _element("w:delText")
    gone.text = "WITHDRAWN WORDS"
    gone_run.append(gone)
    deleted.append(gone_run)
    edited._p.append(inserted)
    edited._p.append(deleted)
    document.save(str(tmp_path / "edits.docx"))
    doc = _read(tmp_path / "edits.docx")
    assert _outline(doc) == [("Swarm control > Queen cells", None, "Split the colony before the swarm leaves.")]


def test_office_files_without_core_properties_have_no_invented_title(tmp_path):
    import re

    for name, writer in (("a.docx", write_docx), ("a.pptx", write_pptx)):
        real = writer(tmp_path / name)
        with zipfile.ZipFile(real) as z:
            rels = re.sub(rb"<Relationship [^>]*core-properties[^>]*/>", b"", z.read("_rels/.rels"))
        bare = tmp_path / f"bare-{name}"
        with zipfile.ZipFile(real) as old, zipfile.ZipFile(bare, "w") as new:
            for info in old.infolist():
                if info.filename != "docProps/core.xml":
                    new.writestr(info, rels if info.filename == "_rels/.rels" else old.read(info))
        doc = _read(bare)
        assert doc.title == ("Hive Manual" if name == "a.docx" else None)  # the Title paragraph, or nothing
        assert doc.sections


def test_docm_is_read_and_flagged_never_run(tmp_path):
    plain = write_docx(tmp_path / "plain.docx")
    with zipfile.ZipFile(plain) as z:
        types = z.read("[Content_Types].xml").replace(
            b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            b"application/vnd.ms-word.document.macroEnabled.main+xml",
        )
    assert b"macroEnabled" in types
    macro = rezip(
        plain, tmp_path / "macro.docm", replace={"[Content_Types].xml": types}, add={"word/vbaProject.bin": b"\xd0\xcf"}
    )
    doc = _read(macro)
    assert doc.warnings == ["contains macros (not run)"]
    assert "Feed fondant" in " ".join(s.text for s in doc.sections)


# PowerPoint


def test_pptx_one_section_per_slide_with_title_notes_tables_and_groups(tmp_path):
    doc = _read(write_pptx(tmp_path / "deck.pptx"))
    assert _outline(doc) == [
        (
            "Varroa treatment",
            "slide 1",
            "Oxalic acid in winter\nFormic acid in summer\n\nNotes: Mention the broodless period.",
        ),
        ("Colony numbers", "slide 3", "Apiary | Colonies\n\nNorth | 12\n\nGrouped caption text"),
    ]


def test_slide_show_ppsx_is_read_like_a_deck(tmp_path):
    deck = write_pptx(tmp_path / "deck.pptx")
    with zipfile.ZipFile(deck) as z:
        types = z.read("[Content_Types].xml").replace(b"presentation.main+xml", b"slideshow.main+xml")
    assert b"slideshow.main+xml" in types
    show = rezip(deck, tmp_path / "show.ppsx", replace={"[Content_Types].xml": types})
    assert [s.locator for s in _read(show).sections] == ["slide 1", "slide 3"]


# OpenDocument, EPUB


def test_odt_headings_lists_and_tables_without_footnotes(tmp_path):
    doc = _read(write_odt(tmp_path / "year.odt"))
    assert doc.title == "Beekeeping year"
    assert _outline(doc) == [
        ("Spring", None, "Check every frame for eggs."),
        ("Spring > Swarms", None, "Catch the swarm in a skep.\n\nMonth | Task\n\nApril | Add supers"),
        ("Autumn", None, "Feed thick syrup in September."),
    ]


def test_odt_with_a_damaged_part_is_refused_quietly(tmp_path, capsys):
    real = write_odt(tmp_path / "year.odt")
    with zipfile.ZipFile(real) as z:
        content = z.read("content.xml")
    broken = rezip(real, tmp_path / "broken.odt", replace={"content.xml": content.replace(b"</text:h>", b"", 1)})
    with pytest.raises(IngestError, match=r"damaged ODT: content\.xml is not well-formed XML"):
        _read(broken)
    assert capsys.readouterr().out == ""  # odfpy alone would print the whole part to stdout


def test_epub_chapter_titles_come_from_the_table_of_contents(tmp_path):
    doc = _read(write_epub(tmp_path / "book.epub"))
    assert doc.title == "The Bee Book"
    assert _outline(doc) == [
        ("Part One > Chapter One", None, "Queens lay eggs."),
        ("Part One > Chapter One > Drones", None, "Drones mate in flight."),
        ("Part One > Chapter Two", None, "Workers forage for nectar."),
        ("Appendix", None, "Suppliers of hive tools."),  # not in the TOC: its own heading
    ]


# Notebooks, CSV


def _notebook(path: Path) -> Path:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Hive weights\n", "\n", "Weighed every Sunday.\n"]},
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "source": ["import pandas as pd\n", "weights = pd.read_csv('hives.csv')"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["OUTPUT NOT INDEXED\n"]}],
        },
        {"cell_type": "raw", "metadata": {}, "source": "raw cell"},
        {"cell_type": "markdown", "metadata": {}, "source": "## Plot", "attachments": {"a.png": {"image/png": "AAAA"}}},
        {"cell_type": "code", "metadata": {}, "execution_count": 2, "source": "weights.plot()", "outputs": []},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "source": "", "outputs": []},
    ]
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    return path


def test_notebook_cells_are_sections_with_numbers_and_markdown_headings_carry(tmp_path):
    doc = _read(_notebook(tmp_path / "weights.ipynb"))
    assert doc.title == "Hive weights"
    assert _outline(doc) == [
        ("Hive weights", "cell 1", "Weighed every Sunday."),
        ("Hive weights", "cell 2", "import pandas as pd\nweights = pd.read_csv('hives.csv')"),
        ("Hive weights > Plot", "cell 5", "weights.plot()"),
    ]


def test_csv_rows_carry_their_header_and_row_number(tmp_path):
    path = tmp_path / "hives.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerows([["hive", "weight", "note"], ["A", "31.5", "strong;\ncalm"], [], ["B", "", "queenless"]])
    doc = _read(path)
    assert _outline(doc) == [
        (None, "row 2", "hive: A\nweight: 31.5\nnote: strong;\ncalm"),
        (None, "row 4", "hive: B\nnote: queenless"),
    ]


def test_tsv_and_header_only_csv(tmp_path):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("name\tcolour\nclover\twhite, pink\n")
    assert _outline(_read(tsv)) == [(None, "row 2", "name: clover\ncolour: white, pink")]
    header = tmp_path / "h.csv"
    header.write_text("a,b,c\n\n")
    with pytest.raises(IngestError, match="no rows"):
        _read(header)


# E-mail


def _mail(subject: str, body: str, attachments: list[tuple[str, bytes, str]] = ()) -> EmailMessage:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "Ann <ann@example.org>", "bob@example.org"
    message["Date"] = "Mon, 01 Jul 2024 10:00:00 +0000"
    message.set_content(body)
    message.add_alternative(f"<html><body><p>HTML ONLY {body}</p></body></html>", subtype="html")
    for name, data, mime in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


def _report_mail(tmp_path: Path) -> EmailMessage:
    pdf = write_pdf(tmp_path / "report.pdf", ["Mite counts were low.", "Oxalic acid dosage: 5 ml per seam."])
    return _mail(
        "Hive report",
        "Hi Bob,\n\nthe colonies are strong.",
        [
            ("report.pdf", pdf.read_bytes(), "application/pdf"),
            ("notes.md", b"# Notes\n\nQueen seen on frame 4.\n", "text/markdown"),
            ("logo.png", b"\x89PNG\r\n\x1a\n", "image/png"),
        ],
    )


def test_eml_headers_plain_body_and_readable_attachments(tmp_path):
    path = tmp_path / "report.eml"
    path.write_bytes(_report_mail(tmp_path).as_bytes())
    doc = _read(path)
    assert doc.title == "Hive report" and doc.warnings == []
    assert _outline(doc) == [
        (
            "Hive report",
            None,
            "Subject: Hive report\nFrom: Ann <ann@example.org>\nTo: bob@example.org\n"
            "Date: Mon, 01 Jul 2024 10:00:00 +0000\n\nHi Bob,\n\nthe colonies are strong.",
        ),
        (None, "attachment report.pdf, p. 1", "Mite counts were low."),
        (None, "attachment report.pdf, p. 2", "Oxalic acid dosage: 5 ml per seam."),
        ("Notes", "attachment notes.md", "Queen seen on frame 4."),
    ]


def test_eml_html_only_body_goes_through_the_html_walker(tmp_path):
    message = EmailMessage()
    message["Subject"] = "Newsletter"
    message.set_content("<h1>Spring</h1><p>Swarm season.</p><script>alert(1)</script>", subtype="html")
    path = tmp_path / "news.eml"
    path.write_bytes(message.as_bytes())
    assert _outline(_read(path)) == [("Newsletter > Spring", None, "Subject: Newsletter\n\nSwarm season.")]
    message.clear_content()
    message.set_content("  \n")  # an empty plain part beside the HTML one
    message.add_alternative("<p>Only the HTML has words.</p>", subtype="html")
    path.write_bytes(message.as_bytes())
    assert _outline(_read(path)) == [("Newsletter", None, "Subject: Newsletter\n\nOnly the HTML has words.")]


def test_attachments_nest_at_most_two_deep(tmp_path):
    message = _mail("Level three", "Third level text.")
    for level in ("two", "one", "zero"):  # each message attaches the previous one
        outer = _mail(f"Level {level}", f"Text at level {level}.")
        outer.add_attachment(message)
        message = outer
    path = tmp_path / "nested.eml"
    path.write_bytes(message.as_bytes())
    doc = _read(path)
    assert [(s.heading, s.locator) for s in doc.sections] == [
        ("Level zero", None),
        ("Level one", "attachment forwarded message"),
        ("Level two", "attachment forwarded message, attachment forwarded message"),
    ]
    assert "Third level text." not in " ".join(s.text for s in doc.sections)
    assert doc.warnings == [
        "attachment forwarded message: attachment forwarded message: "
        "attachment forwarded message not read: attachments nested more than 2 deep"
    ]


def test_mbox_messages_are_numbered(tmp_path):
    messages = [
        _report_mail(tmp_path),
        _mail("Second", "From the apiary: all quiet."),
        _mail("Third", "Honey harvest next week."),
    ]
    mbox = b"".join(
        b"From ann@example.org Mon Jul  1 10:00:00 2024\n" + m.as_bytes().replace(b"\nFrom ", b"\n>From ") + b"\n"
        for m in messages
    )
    path = tmp_path / "inbox.mbox"
    path.write_bytes(mbox)
    doc = _read(path)
    assert [(s.heading, s.locator) for s in doc.sections] == [
        ("Hive report", "message 1"),
        ("Hive report", "message 1, attachment report.pdf, p. 1"),
        ("Hive report", "message 1, attachment report.pdf, p. 2"),
        ("Notes", "message 1, attachment notes.md"),
        ("Second", "message 2"),
        ("Third", "message 3"),
    ]
    assert doc.sections[4].text.endswith("From the apiary: all quiet.")  # ">From " unescaped


def test_truncated_mbox_keeps_the_messages_before_the_cut(tmp_path):
    first, second = _mail("Kept", "Complete message."), _report_mail(tmp_path)
    data = b"From a Mon Jul  1 10:00:00 2024\n" + first.as_bytes() + b"\nFrom b Mon Jul  1 11:00:00 2024\n"
    data += second.as_bytes()[: len(second.as_bytes()) * 2 // 3]
    path = tmp_path / "cut.mbox"
    path.write_bytes(data)
    doc = _read(path)
    assert doc.sections[0].text.endswith("Complete message.") and doc.sections[0].locator == "message 1"
    assert any(w.startswith("message 2: damaged or truncated MIME") for w in doc.warnings), doc.warnings


# Zip safety


def test_zip_bomb_is_refused_from_the_central_directory(tmp_path):
    import time

    bomb = zip_bomb(write_docx(tmp_path / "real.docx"), tmp_path / "bomb.docx")
    assert bomb.stat().st_size < 2 * 2**20
    started = time.perf_counter()
    with pytest.raises(IngestError, match=r"zeros.bin would expand \d+:1 to 1.0 GB; a zip bomb"):
        _read(bomb)
    assert time.perf_counter() - started < 1


def test_a_member_that_inflates_past_its_declared_size_is_caught(tmp_path):
    real = write_docx(tmp_path / "real.docx")
    liar = lie_about_size(real, tmp_path / "liar.docx", "word/document.xml", 100)
    with pytest.raises(IngestError, match=r"damaged DOCX: word/document\.xml"):
        _read(liar)


def test_too_many_entries_and_entity_declarations_are_refused(tmp_path):
    real = write_docx(tmp_path / "real.docx")
    with zipfile.ZipFile(real) as z, pytest.raises(IngestError, match="entries in its zip archive"):
        archive.open_zip(real.read_bytes(), "DOCX", archive.Limits(max_entries=len(z.namelist()) - 1))
    with zipfile.ZipFile(real) as z:
        xml = z.read("word/document.xml")
    laughs = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    bomb = rezip(real, tmp_path / "laughs.docx", replace={"word/document.xml": laughs + xml[xml.index(b"?>") + 2 :]})
    with pytest.raises(IngestError, match="declares XML entities"):
        _read(bomb)


@pytest.mark.parametrize("name", ["a.docx", "a.pptx", "a.odt", "a.epub"])
def test_truncated_and_ole2_files_are_clear_errors(tmp_path, name):
    writer = {".docx": write_docx, ".pptx": write_pptx, ".odt": write_odt, ".epub": write_epub}[Path(name).suffix]
    data = writer(tmp_path / name).read_bytes()
    with pytest.raises(IngestError, match="truncated or damaged"):
        read(Path(name), data[: len(data) // 3])
    with pytest.raises(IngestError, match=r"legacy .* without a password"):
        read(Path(name), archive.OLE2_MAGIC + bytes(1024))


def test_registry_import_loads_no_parsing_library():
    code = (
        "import sys, kb.ingest.readers\n"
        "print(sorted(m for m in ('docx', 'pptx', 'odf', 'ebooklib', 'lxml', 'bs4', 'pypdf', 'email.parser')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# End to end


def _corpus(tmp_path: Path) -> Path:
    root = tmp_path / "kept"
    root.mkdir()
    write_docx(root / "manual.docx")
    write_pptx(root / "deck.pptx")
    write_odt(root / "year.odt")
    write_epub(root / "book.epub")
    _notebook(root / "weights.ipynb")
    (root / "hives.csv").write_text("hive,weight,note\nA,31.5,strong\nB,22,queenless colony needs a new queen\n")
    (root / "report.eml").write_bytes(_report_mail(tmp_path).as_bytes())
    return root


def test_hash_embedder_every_format_is_ingested_and_hits_carry_locators(tmp_path, make_kb):
    kb = make_kb(model="hash")
    report = kb.ingest([_corpus(tmp_path)])
    assert (report.added, report.failed, report.warnings) == (7, [], [])
    wanted = {
        "queenless colony needs a new queen": ("hives.csv", "row 3"),
        "Oxalic acid dosage per seam": ("report.eml", "attachment report.pdf, p. 2"),
        "Mention the broodless period": ("deck.pptx", "slide 1"),
        "weights plot": ("weights.ipynb", "cell 5"),
    }
    for query, (name, locator) in wanted.items():
        top = kb.search(query, 1)[0]
        assert (Path(top.source).name, top.locator, top.location()) == (name, locator, locator), query
    again = make_kb(model="hash").ingest([tmp_path / "kept"])
    assert again.unchanged == 7 and again.chunks_added == 0


def test_hash_embedder_search_json_shows_the_locator(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    assert cli("ingest", _corpus(tmp_path), "--json").code == 0
    hit = cli("search", "Mention the broodless period", "--json", "-k", "1").ndjson()[0]
    assert (hit["locator"], hit["heading"], hit["page"], hit["lines"]) == ("slide 1", "Varroa treatment", None, None)
