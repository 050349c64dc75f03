"""Real Word, PowerPoint, OpenDocument and EPUB files for tests, each written with its own
library, and zip surgery for the hostile variants."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

GOOD = "Bees collect nectar and pollen from flowers. The queen lays eggs in the brood comb."


def write_docx(path: Path, body: str = GOOD) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Hive Manual"
    document.add_heading("Hive Manual", 0)
    document.add_paragraph("How to keep bees without losing them.")
    document.add_heading("Inspection", 1)
    document.add_paragraph(body)
    document.add_heading("Frames", 2)
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "Frame", (0, 1): "State", (1, 0): "3", (1, 1): "capped brood"}.items():
        table.cell(row, col).text = text
    document.add_heading("Winter", 1)
    document.add_paragraph("Feed fondant when the stores run low.")
    document.save(str(path))
    return path


def write_pptx(path: Path) -> Path:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Varroa treatment"
    first.placeholders[1].text = "Oxalic acid in winter\nFormic acid in summer"
    first.notes_slide.notes_text_frame.text = "Mention the broodless period."
    deck.slides.add_slide(deck.slide_layouts[6])  # blank: nothing to index
    third = deck.slides.add_slide(deck.slide_layouts[5])
    third.shapes.title.text = "Colony numbers"
    rows = [("Apiary", "Colonies"), ("North", "12")]
    table = third.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    group = third.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(4), Inches(3), Inches(1)).text_frame.text = "Grouped caption text"
    deck.save(str(path))
    return path


def write_odt(path: Path) -> Path:
    from odf import dc
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, Note, NoteBody, NoteCitation, P

    document = OpenDocumentText()
    document.meta.addElement(dc.Title(text="Beekeeping year"))
    document.text.addElement(H(outlinelevel=1, text="Spring"))
    paragraph = P(text="Check every frame for eggs.")
    note = Note(noteclass="footnote")
    note.addElement(NoteCitation(text="1"))
    note_body = NoteBody()
    note_body.addElement(P(text="A footnote kb leaves out."))
    note.addElement(note_body)
    paragraph.addElement(note)
    document.text.addElement(paragraph)
    document.text.addElement(H(outlinelevel=2, text="Swarms"))
    items = List()
    item = ListItem()
    item.addElement(P(text="Catch the swarm in a skep."))
    items.addElement(item)
    document.text.addElement(items)
    table = Table()
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for left, right in (("Month", "Task"), ("April", "Add supers")):
        row = TableRow()
        for text in (left, right):
            cell = TableCell()
            cell.addElement(P(text=text))
            row.addElement(cell)
        table.addElement(row)
    document.text.addElement(table)
    document.text.addElement(H(outlinelevel=1, text="Autumn"))
    document.text.addElement(P(text="Feed thick syrup in September."))
    document.save(str(path))
    return path


def write_epub(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("kb-test-book")
    book.set_title("The Bee Book")
    book.set_language("en")
    chapters = [
        ("ch1.xhtml", "<h1>Chapter One</h1><p>Queens lay eggs.</p><h2>Drones</h2><p>Drones mate in flight.</p>"),
        ("ch2.xhtml", "<p>Workers forage for nectar.</p>"),
        ("appendix.xhtml", "<h1>Appendix</h1><p>Suppliers of hive tools.</p>"),
    ]
    items = []
    for name, html in chapters:
        item = epub.EpubHtml(title=name, file_name=name, lang="en")
        item.content = html
        book.add_item(item)
        items.append(item)
    book.toc = (
        (
            epub.Section("Part One"),
            (epub.Link("ch1.xhtml", "Chapter One", "c1"), epub.Link("ch2.xhtml", "Chapter Two", "c2")),
        ),
    )
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


def rezip(
    source: Path, target: Path, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None
) -> Path:
    """A copy of a zip-based document with members replaced or added."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, replace.get(info.filename, old.read(info.filename)))
        for name, data in add.items():
            new.writestr(name, data)
    return target


def zip_bomb(source: Path, target: Path, size: int = 2**30) -> Path:
    """A real document plus a member of `size` bytes of zeros that deflates to ~1 MB.

    Deflating a gigabyte here would take seconds, so the stream is built from one 1 MiB
    segment ended with a full flush (which makes it independent of what came before),
    repeated, and closed by an empty final block; the member is written stored, then
    marked deflated with its true size and CRC. It inflates to exactly `size` zeros."""
    block = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = segment * (size // len(block)) + b"\x03\x00"
    crc = 0
    for _ in range(size // len(block)):
        crc = zlib.crc32(block, crc)
    name = "word/media/zeros.bin"
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
        stored = zipfile.ZipInfo(name)
        stored.compress_type = zipfile.ZIP_STORED
        new.writestr(stored, stream)
        local = new.getinfo(name).header_offset
    data = bytearray(buffer.getvalue())
    central = data.rindex(name.encode()) - 46
    assert data[local : local + 4] == b"PK\x03\x04" and data[central : central + 4] == b"PK\x01\x02"
    for header, method_at in ((local, 8), (central, 10)):
        struct.pack_into("<H", data, header + method_at, zipfile.ZIP_DEFLATED)
        struct.pack_into("<I", data, header + method_at + 6, crc)
        struct.pack_into("<I", data, header + method_at + 14, size)  # uncompressed size
    target.write_bytes(bytes(data))
    return target


def lie_about_size(source: Path, target: Path, member: str, declared: int) -> Path:
    """A copy whose central directory declares `member` smaller than it inflates."""
    data = bytearray(source.read_bytes())
    central = data.rindex(member.encode()) - 46
    assert data[central : central + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, central + 24, declared)
    target.write_bytes(bytes(data))
    return target
