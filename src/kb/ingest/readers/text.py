"""Markdown, plain text and reStructuredText, and the heading-path helpers other readers share.

Sections are cut at headings and keep the 1-based line where their text starts, so chunks
can cite line ranges.
"""

from __future__ import annotations

import re
from pathlib import Path

from kb.documents import Document, Section
from kb.ingest.decoding import decode, suspicious_characters

_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def with_encoding_warning(doc: Document, encoding: str) -> Document:
    if encoding not in ("utf-8", "utf-8-sig", "ascii"):
        doc.warnings.append(f"decoded as {encoding}")
    bad = suspicious_characters("".join(s.text for s in doc.sections))
    if bad:
        doc.warnings.append(
            f"text looks badly decoded: {bad} replacement or mojibake sequences (mixed encodings in one file?)"
        )
    return doc


class HeadingPath:
    """The chain of enclosing headings, e.g. "Guide > Setup > Deep"."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        self._stack = [(lvl, t) for lvl, t in self._stack if lvl < level] + [(level, title)]
        return " > ".join(t for _, t in self._stack)

    @property
    def current(self) -> str | None:
        return " > ".join(t for _, t in self._stack) or None


def markdown_headings(lines: list[str]) -> dict[int, tuple[int, str]]:
    """ATX headings outside fenced code: line index → (level, title)."""
    headings: dict[int, tuple[int, str]] = {}
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _ATX.match(line)
        if match:
            headings[i] = (len(match.group(1)), match.group(2).strip())
    return headings


def heading_sections(lines: list[str], headings: dict[int, tuple[int, str]]) -> list[Section]:
    """Split lines into sections at heading lines; `headings` maps line index → (level, title)."""
    sections: list[Section] = []
    path = HeadingPath()
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
    headings = markdown_headings(lines)
    sections = heading_sections(lines, headings)
    title = next((t for lvl, t in headings.values() if lvl == 1), None)
    return with_encoding_warning(Document(source=str(path), sections=sections, title=title), encoding)


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
    sections = heading_sections(lines, headings)
    title: str | None = next(iter(headings.values()))[1] if headings else None
    return with_encoding_warning(Document(source=str(path), sections=sections, title=title), encoding)
