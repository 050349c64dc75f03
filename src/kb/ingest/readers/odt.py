"""OpenDocument text (.odt): headings (text:h and their outline levels), paragraphs, lists
and tables in document order, cut into sections at headings. Footnotes, comments, the
deleted text of tracked changes and generated indexes are left out; embedded macros are
never run, only noted."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.readers import archive
from kb.ingest.readers.failures import describe, translated
from kb.ingest.readers.text import HeadingPath

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_DC = "http://purl.org/dc/elements/1.1/"
_LEFT_OUT = {
    (_TEXT, "note"),
    (_TEXT, "tracked-changes"),
    (_TEXT, "table-of-content"),
    (_TEXT, "alphabetical-index"),
    (_TEXT, "illustration-index"),
    (_TEXT, "table-index"),
    (_TEXT, "object-index"),
    (_TEXT, "user-index"),
    (_TEXT, "bibliography"),
    (_TEXT, "sequence-decls"),
    (_TEXT, "variable-decls"),
    (_OFFICE, "annotation"),
    (_OFFICE, "forms"),
}
_ROW_GROUPS = {(_TABLE, n) for n in ("table-header-rows", "table-rows", "table-row-group")}
_PARTS = {"content.xml", "styles.xml", "meta.xml", "settings.xml"}  # the parts odfpy parses
_MAX_SPACES = 8  # text:s c="1000000000" must not become a gigabyte of spaces


def read_odt(path: Path, data: bytes) -> Document:
    with archive.open_zip(data, "ODT") as zf:
        archive.refuse_entity_declarations(zf, "ODT")
        macros = archive.has_macros(zf)
        manifest = "META-INF/manifest.xml"
        if manifest in zf.namelist() and b"encryption-data" in archive.read_member(zf, manifest, "ODT"):
            raise IngestError("password-protected ODT: save it without a password and ingest it again")
        _check_well_formed(zf)
    with translated("ODT"):
        from odf.opendocument import load

        _quiet_odfpy()
        odf = load(io.BytesIO(data))
        body = getattr(odf, "text", None)
        if body is None:
            raise IngestError(f"not an OpenDocument text (it is {odf.mimetype})")
        builder = _Builder()
        builder.walk(body)
        title = _title(odf)
    doc = Document(source=str(path), sections=builder.finish(), title=title)
    if macros:
        doc.warnings.append(archive.MACRO_WARNING)
    return doc


def _check_well_formed(zf: Any) -> None:
    """odfpy swallows a part that fails to parse (and prints it whole to stdout), which
    would index half a document in silence; so the parts it parses are checked first."""
    from xml.parsers import expat

    for name in zf.namelist():
        if name.rsplit("/", 1)[-1] in _PARTS:
            try:
                expat.ParserCreate().Parse(archive.read_member(zf, name, "ODT"), True)
            except (expat.ExpatError, LookupError, ValueError) as exc:  # LookupError: a bogus encoding
                raise IngestError(f"damaged ODT: {name} is not well-formed XML ({describe(exc)})") from exc


def _quiet_odfpy() -> None:
    # odfpy reports parse trouble with print(): to stdout, where `kb ingest --json` writes
    # its report. A module-level `print` shadows the builtin for odfpy's modules alone and
    # routes the report to logging, which kb files under the document's warnings.
    import logging

    from odf import load, opendocument

    def report(*args: object, **_: object) -> None:
        logging.getLogger("odfpy").warning("a part of the document could not be parsed")

    for module in (load, opendocument):
        module.print = report


class _Builder:
    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._path = HeadingPath()
        self._heading: str | None = None
        self._paragraphs: list[str] = []
        self._titles: list[str] = []

    def walk(self, node: Any) -> None:
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname is None or qname in _LEFT_OUT:
                continue
            if qname == (_TEXT, "h"):
                self._enter(child)
            elif qname == (_TEXT, "p"):
                self._add(_inline(child))
            elif qname == (_TABLE, "table"):
                for row in _rows(child):
                    cells = [" ".join(_inline(cell).split()) for cell in _cells(row)]
                    self._add(" | ".join(cells) if any(cells) else "")
            else:  # lists, list items, sections, frames: containers of the above
                self.walk(child)

    def _add(self, text: str) -> None:
        if text.strip():
            self._paragraphs.append(text.strip())

    def _enter(self, element: Any) -> None:
        title = " ".join(_inline(element).split())
        if not title:
            return
        self._flush()
        try:
            level = int(element.getAttrNS(_TEXT, "outline-level") or 1)
        except ValueError:
            level = 1
        self._titles.append(title)
        self._heading = self._path.enter(max(1, min(level, 10)), title)

    def _flush(self) -> None:
        if self._paragraphs:
            self.sections.append(Section(text="\n\n".join(self._paragraphs), heading=self._heading))
            self._paragraphs = []

    def finish(self) -> list[Section]:
        self._flush()
        if not self.sections and self._titles:
            self.sections.append(Section(text="\n".join(self._titles)))
        return self.sections


def _inline(node: Any) -> str:
    out: list[str] = []
    _collect(node, out)
    return "".join(out)


def _collect(node: Any, out: list[str]) -> None:
    for child in node.childNodes:
        qname = getattr(child, "qname", None)
        if qname is None:
            out.append(getattr(child, "data", ""))  # a text node
        elif qname in _LEFT_OUT:
            continue
        elif qname == (_TEXT, "s"):
            try:
                count = int(child.getAttrNS(_TEXT, "c") or 1)
            except ValueError:
                count = 1
            out.append(" " * max(1, min(count, _MAX_SPACES)))
        elif qname == (_TEXT, "tab"):
            out.append("\t")
        elif qname == (_TEXT, "line-break"):
            out.append("\n")
        elif qname in ((_TEXT, "p"), (_TEXT, "h")):
            out.append(" ")  # paragraphs in a table cell or a text box
            _collect(child, out)
        else:
            _collect(child, out)


def _rows(node: Any) -> Iterator[Any]:
    for child in node.childNodes:
        qname = getattr(child, "qname", None)
        if qname == (_TABLE, "table-row"):
            yield child
        elif qname in _ROW_GROUPS:
            yield from _rows(child)


def _cells(row: Any) -> Iterator[Any]:
    for child in row.childNodes:
        if getattr(child, "qname", None) == (_TABLE, "table-cell"):
            yield child


def _title(odf: Any) -> str | None:
    meta = getattr(odf, "meta", None)
    for child in getattr(meta, "childNodes", []):
        if getattr(child, "qname", None) == (_DC, "title"):
            return " ".join(_inline(child).split()) or None
    return None
