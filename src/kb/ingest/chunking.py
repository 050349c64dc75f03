"""Structure-aware chunking into passages that fit the embedding model's window.

Sections (headings, PDF pages) are never merged; inside a section, paragraphs are packed
greedily up to `max_tokens` word pieces, measured with the model's own tokenizer. A
paragraph that is too long is split at sentences, and a sentence that is too long at
token boundaries. Consecutive chunks of a section share up to `overlap` word pieces of
whole trailing sentences, so a fact that straddles a boundary stays findable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kb.documents import Chunk, Document, Section

CHUNKER_VERSION = "2"  # 2: heading paths fit the window (shortened)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")


@dataclass
class _Piece:
    text: str
    first_line: int | None
    last_line: int | None
    tokens: int
    continues: bool = False  # a later sentence of the previous piece's paragraph


class Chunker:
    def __init__(
        self,
        count_tokens: Callable[[str], int],
        split_tokens: Callable[[str, int], list[tuple[str, int]]],
        max_tokens: int = 200,
        overlap: int = 32,
    ) -> None:
        self.count = count_tokens
        self.split = split_tokens
        self.max_tokens = max_tokens
        self.overlap = overlap

    @property
    def version(self) -> str:
        return f"{CHUNKER_VERSION}:{self.max_tokens}:{self.overlap}"

    def chunk(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in doc.sections:
            heading = self._fit_heading(section.heading or doc.title, section.text)
            budget = self.max_tokens - (self.count(heading) + 1 if heading else 0)
            for text, first, last in self._pack(self._pieces(section, budget), budget):
                lines = (first, last) if first is not None and last is not None else None
                chunks.append(_make_chunk(doc.source, len(chunks), text, heading, section.page, lines, section.locator))
        return chunks

    def _fit_heading(self, heading: str | None, text: str) -> str | None:
        """The heading path embedded with a section's chunks, at most a quarter of the
        window: the innermost headings are kept, the outer ones dropped first, and a single
        heading that is still too long is cut. A heading the text merely repeats is dropped."""
        if not heading or heading == text.strip():
            return None
        limit = self.max_tokens // 4
        if self.count(heading) <= limit:
            return heading
        parts = heading.split(" > ")
        while len(parts) > 1 and self.count("… > " + " > ".join(parts)) > limit:
            parts = parts[1:]
        shortened = ("… > " if len(parts) < len(heading.split(" > ")) else "") + " > ".join(parts)
        if self.count(shortened) <= limit:
            return shortened
        cut, _ = self.split(shortened, limit - 1)[0]
        return cut + "…"

    def _pieces(self, section: Section, budget: int) -> Iterable[_Piece]:
        """Paragraphs, or sentences/windows of paragraphs that exceed the budget."""
        offset = 0
        for match in list(_PARAGRAPH.finditer(section.text)) + [None]:
            end = match.start() if match else len(section.text)
            para = section.text[offset:end]
            first = last = None
            if section.first_line is not None:
                lead = len(para) - len(para.lstrip("\n"))
                first = section.first_line + section.text.count("\n", 0, offset + lead)
                last = first + para.strip("\n").count("\n")
            offset = match.end() if match else end
            para = para.strip()
            if not para:
                continue
            tokens = self._count_within(para, budget)
            if tokens is not None:
                yield _Piece(para, first, last, tokens)
                continue
            continues = False
            for sentence in _SENTENCE_END.split(para):
                n = self._count_within(sentence, budget)
                for part, size in [(sentence, n)] if n is not None else self.split(sentence, budget):
                    yield _Piece(part, first, last, size, continues)
                    continues = True

    def _count_within(self, text: str, budget: int) -> int | None:
        """Word pieces in `text`, or None if over `budget`. Every whitespace-separated word
        is at least one piece, so a long text is rejected without tokenizing it (a 12 MB
        one-line file would otherwise be tokenized whole, twice)."""
        if len(text) > budget * 4 and len(text.split(None, budget)) > budget:
            return None
        n = self.count(text)
        return n if n <= budget else None

    def _pack(self, pieces: Iterable[_Piece], budget: int) -> Iterable[tuple[str, int | None, int | None]]:
        current: list[_Piece] = []
        size = 0
        for piece in pieces:
            if current and size + piece.tokens > budget:
                yield _join(current)
                current = self._overlap_tail(current, budget - piece.tokens)
                size = sum(p.tokens for p in current)
            current.append(piece)
            size += piece.tokens
        if current:
            yield _join(current)

    def _overlap_tail(self, pieces: list[_Piece], room: int) -> list[_Piece]:
        """Trailing whole sentences of the finished chunk, up to `overlap` tokens, never all of it."""
        limit = min(self.overlap, room)
        sentences = [(s, p) for p in pieces for s in _SENTENCE_END.split(p.text)]
        tail: list[_Piece] = []
        used = 0
        for sentence, origin in reversed(sentences[1:]):
            n = self.count(sentence)
            if used + n > limit:
                break
            tail.insert(0, _Piece(sentence, origin.last_line, origin.last_line, n, continues=True))
            used += n
        if tail:
            tail[0].continues = False
        return tail


def _join(pieces: list[_Piece]) -> tuple[str, int | None, int | None]:
    firsts = [p.first_line for p in pieces if p.first_line is not None]
    lasts = [p.last_line for p in pieces if p.last_line is not None]
    text = "".join((" " if p.continues else "\n\n") + p.text for p in pieces).strip()
    return text, (min(firsts) if firsts else None), (max(lasts) if lasts else None)


def _make_chunk(
    source: str,
    ordinal: int,
    text: str,
    heading: str | None,
    page: int | None,
    lines: tuple[int, int] | None,
    locator: str | None = None,
) -> Chunk:
    parts = [source, str(ordinal), str(page), str(lines), heading or "", text]
    if locator is not None:
        # Only when set, so the ids of formats without locators (and of every KB built
        # before locators existed) stay what they were: no re-embedding on upgrade.
        parts.append(locator)
    key = "\x1f".join(parts)
    chunk_id = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return Chunk(
        id=chunk_id,
        source=source,
        text=text,
        ordinal=ordinal,
        heading=heading,
        page=page,
        lines=lines,
        locator=locator,
    )
