"""Word documents (.docx, .docm): paragraphs and tables in document order, cut into
sections at headings, with the heading path from the document's own structure (an
outline level on the paragraph or its style, or a built-in "Heading N" style).

Text comes from the WordprocessingML itself, so tracked insertions, fields and content
controls are kept and deleted text, field codes and the fallback copies of text boxes
are not. A .docm is read like a .docx; its macros are never run, only noted.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.readers import archive
from kb.ingest.readers.failures import translated
from kb.ingest.readers.text import HeadingPath

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_NS = {"w": _W[1:-1], "mc": _MC_FALLBACK[1:].split("}")[0]}
# Parts of a run or paragraph that are not its visible text.
_NOT_TEXT = {_W + t for t in ("pPr", "rPr", "del", "moveFrom", "delText", "instrText", "txbxContent")}
_NOT_TEXT.add(_MC_FALLBACK)
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
# The main part of a .docx and of a .docm; python-docx registers only the first.
_MAIN_TYPES = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.ms-word.document.macroEnabled.main+xml",
)


def read_docx(path: Path, data: bytes) -> Document:
    with archive.open_zip(data, "DOCX") as zf:
        archive.refuse_entity_declarations(zf, "DOCX")
        macros = archive.has_macros(zf)
    with translated("DOCX"):
        document = _open(data)
        levels = _StyleLevels(document)
        sections, first_title = _sections(document.element.body, levels)
        title = _core_title(document) or first_title
    doc = Document(source=str(path), sections=sections, title=title or None)
    if macros:
        doc.warnings.append(archive.MACRO_WARNING)
    return doc


def _open(data: bytes) -> Any:
    import docx  # noqa: F401  (registers python-docx's part classes)
    from docx.opc.part import PartFactory
    from docx.package import Package
    from docx.parts.document import DocumentPart

    for content_type in _MAIN_TYPES:
        # A .docm's main part differs only in its content type; python-docx reads it the same.
        PartFactory.part_type_for.setdefault(content_type, DocumentPart)
    part = Package.open(io.BytesIO(data)).main_document_part
    if not isinstance(part, DocumentPart):
        raise IngestError(f"not a Word document (its main part is {part.content_type})")
    return part.document


def _core_title(document: Any) -> str | None:
    # Not document.core_properties: for a file without them it invents "Word Document".
    from docx.opc.constants import RELATIONSHIP_TYPE

    try:
        part = document.part.package.part_related_by(RELATIONSHIP_TYPE.CORE_PROPERTIES)
    except KeyError:
        return None
    return part.core_properties.title or None


class _StyleLevels:
    """Heading level of a paragraph style: its outline level, a "Heading N" name, or the
    same from the style it is based on. 0 is the document title; None is body text."""

    def __init__(self, document: Any) -> None:
        self._styles = {s.style_id: s for s in document.styles if s.style_id}
        self._cache: dict[str | None, int | None] = {}
        self.toc = {sid for sid, s in self._styles.items() if (s.name or "").lower().startswith("toc ")}

    def level(self, style_id: str | None) -> int | None:
        if style_id not in self._cache:
            self._cache[style_id] = self._resolve(style_id)
        return self._cache[style_id]

    def _resolve(self, style_id: str | None) -> int | None:
        style = self._styles.get(style_id) if style_id else None
        for _ in range(16):  # based-on chains are short; a cycle must not loop forever
            if style is None:
                return None
            outline = style.element.find(f"{_W}pPr/{_W}outlineLvl")
            if outline is not None:
                return _outline_level(outline)
            name = style.name or ""
            if match := _HEADING_STYLE.match(name):
                return int(match.group(1))
            if name.lower() == "title":
                return 0
            style = style.base_style
        return None


def _outline_level(element: Any) -> int | None:
    try:
        value = int(element.get(f"{_W}val", "9"))
    except ValueError:  # a malformed level makes a paragraph body text, not a bad file
        return None
    return value + 1 if 0 <= value < 9 else None  # 9 means body text


def _sections(body: Any, levels: _StyleLevels) -> tuple[list[Section], str | None]:
    sections: list[Section] = []
    path = HeadingPath()
    heading: str | None = None
    title: str | None = None
    paragraphs: list[str] = []
    titles: list[str] = []

    def flush() -> None:
        if paragraphs:
            sections.append(Section(text="\n\n".join(paragraphs), heading=heading))
            paragraphs.clear()

    for block in _blocks(body):
        if block.tag == _W + "tbl":
            paragraphs.extend(_table_rows(block))
            continue
        pstyle = block.find(f"{_W}pPr/{_W}pStyle")
        style_id = pstyle.get(f"{_W}val") if pstyle is not None else None
        if style_id in levels.toc:
            continue  # a table of contents repeats the headings with page numbers
        text = _text(block).strip()
        if not text:
            continue
        outline = block.find(f"{_W}pPr/{_W}outlineLvl")
        level = _outline_level(outline) if outline is not None else levels.level(style_id)
        if level is None:
            paragraphs.append(text)
            continue
        flush()
        titles.append(" ".join(text.split()))
        heading = path.enter(level, titles[-1])
        if level == 0 and title is None:
            title = titles[-1]
    flush()
    if not sections and titles:
        sections.append(Section(text="\n".join(titles)))  # headings alone are still text to find
    return sections, title


def _blocks(container: Any) -> Iterator[Any]:
    """Paragraphs and tables in reading order, through content controls and text boxes."""
    for child in container:
        if child.tag == _W + "p":
            yield child
            if child.find(f".//{_W}txbxContent") is not None:
                yield from _text_boxes(child)
        elif child.tag == _W + "tbl":
            yield child
        elif child.tag == _W + "sdt":
            content = child.find(_W + "sdtContent")
            if content is not None:
                yield from _blocks(content)
        elif child.tag == _W + "customXml":
            yield from _blocks(child)


def _text_boxes(paragraph: Any) -> Iterator[Any]:
    # Only the boxes anchored in this paragraph, not boxes nested in those (they are
    # reached from the paragraphs of their own box), and not the VML fallback copies.
    depth = _xpath("count(ancestor::w:txbxContent)")(paragraph)
    query = ".//w:txbxContent[not(ancestor::mc:Fallback)][count(ancestor::w:txbxContent) = $depth]"
    for box in _xpath(query)(paragraph, depth=depth):
        yield from _blocks(box)


def _table_rows(table: Any) -> list[str]:
    rows = []
    for row in _xpath("./w:tr | ./w:sdt/w:sdtContent/w:tr")(table):
        cells = _xpath("./w:tc | ./w:sdt/w:sdtContent/w:tc")(row)
        texts = [" ".join(_text(p).split()) for p in cells]
        if any(texts):
            rows.append(" | ".join(texts))
    return rows


@functools.cache
def _xpath(query: str) -> Any:
    from lxml import etree

    return etree.XPath(query, namespaces=_NS)


def _text(element: Any) -> str:
    out: list[str] = []
    _collect(element, out)
    return "".join(out)


def _collect(element: Any, out: list[str]) -> None:
    for child in element:
        tag = child.tag
        if not isinstance(tag, str) or tag in _NOT_TEXT:
            continue  # comments and processing instructions have no string tag
        if tag == _W + "t":
            out.append(child.text or "")
        elif tag == _W + "tab":
            out.append("\t")
        elif tag in (_W + "br", _W + "cr"):
            out.append("\n")
        elif tag == _W + "noBreakHyphen":
            out.append("-")
        elif tag == _W + "p":
            out.append(" ")  # paragraphs inside a table cell
            _collect(child, out)
        else:
            _collect(child, out)
