"""HTML: visible text only, cut into sections at h1–h6. The section walker is shared with
readers of formats that carry HTML inside (EPUB chapters, HTML e-mail bodies)."""

from __future__ import annotations

from pathlib import Path

from kb.documents import Document, Section
from kb.ingest.decoding import decode
from kb.ingest.readers.text import HeadingPath, with_encoding_warning

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


class HtmlSections:
    """Walks the parsed tree in document order, cutting sections at h1–h6."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._path = HeadingPath()
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


def html_sections(text: str) -> tuple[list[Section], str | None]:
    """Sections and <title> of an HTML text."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    return HtmlSections().read(soup), title or None


def read_html(path: Path, data: bytes) -> Document:
    text, encoding = decode(data)
    sections, title = html_sections(text)
    return with_encoding_warning(Document(source=str(path), sections=sections, title=title), encoding)
