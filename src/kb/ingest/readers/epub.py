"""EPUB: the spine's documents in reading order, each through the HTML section walker,
with the chapter title from the table of contents (or, without one, the chapter's own
first heading) at the head of every heading path."""

from __future__ import annotations

import io
import posixpath
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.decoding import decode
from kb.ingest.readers import archive
from kb.ingest.readers.failures import translated
from kb.ingest.readers.html import html_sections

_FONT = re.compile(rb"\.(ttf|otf|woff2?)$", re.IGNORECASE)


def read_epub(path: Path, data: bytes) -> Document:
    with archive.open_zip(data, "EPUB") as zf:
        archive.refuse_entity_declarations(zf, "EPUB")
        _refuse_drm(zf)
    with translated("EPUB"):
        from ebooklib import ITEM_DOCUMENT, epub

        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
        chapters = _toc_titles(book.toc)
        doc = Document(source=str(path), sections=[], title=_title(book))
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or item.get_type() != ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
                continue  # the navigation document repeats the table of contents
            name = posixpath.normpath(item.get_name())
            try:
                text, _encoding = decode(item.get_content())
            except IngestError as exc:
                doc.warnings.append(f"chapter {name} not read: {exc}")
                continue
            sections, _ = html_sections(text)
            doc.sections += [_under(chapters.get(name), s) for s in sections]
    return doc


def _refuse_drm(zf: Any) -> None:
    names = set(zf.namelist())
    if "META-INF/rights.xml" in names:
        raise IngestError("DRM-protected EPUB: kb can only read EPUBs without DRM")
    if "META-INF/encryption.xml" in names:
        # Obfuscated fonts are normal; encrypted chapters are DRM.
        listed = re.findall(rb'URI="([^"]+)"', archive.read_member(zf, "META-INF/encryption.xml", "EPUB"))
        if any(not _FONT.search(uri) for uri in listed):
            raise IngestError("DRM-protected EPUB (its chapters are encrypted): kb can only read EPUBs without DRM")


def _toc_titles(toc: Any, trail: tuple[str, ...] = ()) -> dict[str, str]:
    """Chapter file → title path ("Part I > Chapter 1"), the first entry for a file winning."""
    titles: dict[str, str] = {}
    for entry in toc or []:
        node, children = entry if isinstance(entry, tuple) and len(entry) == 2 else (entry, [])
        title = " ".join(str(getattr(node, "title", "") or "").split())
        here = (*trail, title) if title else trail
        href = unquote(str(getattr(node, "href", "") or "")).split("#")[0]
        if href and here:
            titles.setdefault(posixpath.normpath(href), " > ".join(here))
        for name, path in _toc_titles(children, here).items():
            titles.setdefault(name, path)
    return titles


def _under(chapter: str | None, section: Section) -> Section:
    heading = section.heading
    if chapter and heading:
        first, _, rest = heading.partition(" > ")
        if first == chapter.rsplit(" > ", 1)[-1]:  # the chapter's h1 repeats its TOC title
            heading = f"{chapter} > {rest}" if rest else chapter
        else:
            heading = f"{chapter} > {heading}"
    return Section(text=section.text, heading=heading or chapter)


def _title(book: Any) -> str | None:
    titles = book.get_metadata("DC", "title")
    if not titles:
        return None
    return " ".join(str(titles[0][0]).split()) or None
