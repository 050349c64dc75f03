"""Readers turn one file into a Document. The registry maps file suffixes to readers.

Every reader gets the path and the file's bytes (read once by the pipeline, which also
hashes them) and returns sections that keep the structure chunking needs: heading paths
with line numbers for Markdown and text, headings for HTML, pages for PDF.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.decoding import decode, suspicious_characters

Reader = Callable[[Path, bytes], Document]

_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def _with_encoding_warning(doc: Document, encoding: str) -> Document:
    if encoding not in ("utf-8", "utf-8-sig", "ascii"):
        doc.warnings.append(f"decoded as {encoding}")
    bad = suspicious_characters("".join(s.text for s in doc.sections))
    if bad:
        doc.warnings.append(
            f"text looks badly decoded: {bad} replacement or mojibake sequences (mixed encodings in one file?)"
        )
    return doc


class _HeadingPath:
    """The chain of enclosing headings, e.g. "Guide > Setup > Deep"."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        self._stack = [(lvl, t) for lvl, t in self._stack if lvl < level] + [(level, title)]
        return " > ".join(t for _, t in self._stack)


def _heading_sections(lines: list[str], headings: dict[int, tuple[int, str]]) -> list[Section]:
    """Split lines into sections at heading lines; `headings` maps line index → (level, title)."""
    sections: list[Section] = []
    path = _HeadingPath()
    heading, start = None, 0

    def flush(end: int) -> None:
        body = lines[start:end]
        while body and not body[0].strip():
            body = body[1:]
        lead = end - start - len(body)
        text = "\n".join(body).rstrip()
        if text:
            sections.append(Section(text=text, heading=heading, first_line=start + lead + 1))

    for i in sorted(headings):
        flush(i)
        heading, start = path.enter(*headings[i]), i + 1
    flush(len(lines))
    if not sections and headings:
        # A file of headings alone ("# Alpha notes") is still text someone may look for.
        titles = [headings[i][1] for i in sorted(headings)]
        sections.append(Section(text="\n".join(titles), first_line=min(headings) + 1))
    return sections


def read_markdown(path: Path, data: bytes) -> Document:
    text, encoding = decode(data)
    lines = text.splitlines()
    headings: dict[int, tuple[int, str]] = {}
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _ATX.match(line)
        if match:
            headings[i] = (len(match.group(1)), match.group(2).strip())
    sections = _heading_sections(lines, headings)
    title = next((t for lvl, t in headings.values() if lvl == 1), None)
    return _with_encoding_warning(Document(source=str(path), sections=sections, title=title), encoding)


def read_text(path: Path, data: bytes) -> Document:
    text, encoding = decode(data)
    lines = text.splitlines()
    headings: dict[int, tuple[int, str]] = {}
    if path.suffix.lower() == ".rst":
        # reStructuredText titles: a line underlined by punctuation of at least its length.
        levels: list[str] = []
        for i in range(1, len(lines)):
            under, candidate = lines[i], lines[i - 1].strip()
            if candidate and _RST_UNDERLINE.match(under) and len(under.strip()) >= len(candidate):
                if under[0] not in levels:
                    levels.append(under[0])
                headings[i - 1] = (levels.index(under[0]) + 1, candidate)
        lines = [("" if i - 1 in headings else line) for i, line in enumerate(lines)]
    sections = _heading_sections(lines, headings)
    title: str | None = next(iter(headings.values()))[1] if headings else None
    return _with_encoding_warning(Document(source=str(path), sections=sections, title=title), encoding)


_BLOCKS = {
    "p",
    "div",
    "li",
    "br",
    "tr",
    "td",
    "th",
    "section",
    "article",
    "pre",
    "blockquote",
    "table",
    "ul",
    "ol",
    "dd",
    "dt",
    "header",
    "footer",
    "main",
    "aside",
    "figure",
    "figcaption",
    "hr",
    "nav",
    "form",
    "body",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_INVISIBLE = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}


class _HtmlSections:
    """Walks the parsed tree in document order, cutting sections at h1–h6."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._path = _HeadingPath()
        self._heading: str | None = None
        self._paragraphs: list[str] = []
        self._words: list[str] = []

    def _end_paragraph(self) -> None:
        text = " ".join(" ".join(self._words).split())
        if text:
            self._paragraphs.append(text)
        self._words = []

    def _end_section(self) -> None:
        self._end_paragraph()
        if self._paragraphs:
            self.sections.append(Section(text="\n\n".join(self._paragraphs), heading=self._heading))
        self._paragraphs = []

    def read(self, soup) -> list[Section]:
        self._walk(soup)
        self._end_section()
        return self.sections

    def _walk(self, node) -> None:
        from bs4 import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction

        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
                    self._words.append(str(child))
            elif child.name in _INVISIBLE:
                continue
            elif child.name in _HEADINGS:
                self._end_section()
                self._heading = self._path.enter(int(child.name[1]), child.get_text(" ", strip=True))
            elif child.name in _BLOCKS:
                self._end_paragraph()
                self._walk(child)
                self._end_paragraph()
            else:
                self._walk(child)


def read_html(path: Path, data: bytes) -> Document:
    from bs4 import BeautifulSoup

    text, encoding = decode(data)
    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    doc = Document(source=str(path), sections=_HtmlSections().read(soup), title=title or None)
    return _with_encoding_warning(doc, encoding)


def read_pdf(path: Path, data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        # An owner-password-only PDF opens with the empty user password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("encrypted PDF that needs a password; decrypt it first (e.g. qpdf --decrypt)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise IngestError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # pypdf raises many internal types on damaged files
        raise IngestError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    doc = Document(source=str(path), sections=[], title=str(title) if title else None)
    empty = []
    for number, text in enumerate(pages, start=1):
        if text.strip():
            doc.sections.append(Section(text=text, page=number))
        else:
            empty.append(number)
    if empty and len(empty) == len(pages):
        doc.warnings.append("no text layer (scanned or image-only PDF?)")
    elif empty:
        doc.warnings.append(f"pages without text: {', '.join(map(str, empty))}")
    return doc


READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".mdown": read_markdown,
    ".txt": read_text,
    ".text": read_text,
    ".rst": read_text,
    ".adoc": read_text,
    ".org": read_text,
    ".log": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".pdf": read_pdf,
}


def reader_for(path: Path) -> Reader | None:
    """The reader for `path`, or None for a type kb does not read. Files without a suffix
    (README, NOTES) are read as text; decoding refuses them if they are binary."""
    suffix = path.suffix.lower()
    if not suffix:
        return read_text
    return READERS.get(suffix)


def read(path: Path, data: bytes) -> Document:
    reader = reader_for(path)
    if reader is None:
        raise IngestError(f"unsupported file type {path.suffix or '(none)'}")
    return reader(path, data)
