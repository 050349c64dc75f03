"""The data that flows between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """A structural unit of a document: a Markdown/HTML heading section, a PDF page, a
    slide, a notebook cell, a CSV row, an e-mail message."""

    text: str
    heading: str | None = None
    page: int | None = None
    first_line: int | None = None  # 1-based line of `text` in the source file, if meaningful
    # Where in the file, when neither a page nor line numbers apply: "slide 3", "cell 7",
    # "row 12", "message 4, attachment report.pdf, p. 2".
    locator: str | None = None


@dataclass
class Document:
    source: str
    sections: list[Section]
    title: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Chunk:
    id: str
    source: str
    text: str
    ordinal: int
    heading: str | None = None
    page: int | None = None
    lines: tuple[int, int] | None = None
    locator: str | None = None

    def embedding_text(self) -> str:
        # The heading path travels with the passage so a chunk deep in a section still
        # matches questions that name the section's subject.
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    def metadata(self) -> dict[str, Any]:
        meta = {"source": self.source, "ordinal": self.ordinal}
        if self.heading:
            meta["heading"] = self.heading
        if self.page is not None:
            meta["page"] = self.page
        if self.lines:
            meta["lines"] = f"{self.lines[0]}-{self.lines[1]}"
        if self.locator:
            meta["locator"] = self.locator
        return meta


@dataclass
class StoredChunk:
    """A committed chunk as the keyword index keeps it."""

    id: str
    source: str
    text: str
    heading: str | None = None
    page: int | None = None
    lines: str | None = None
    locator: str | None = None

    @classmethod
    def of(cls, chunk: Chunk) -> StoredChunk:
        lines = f"{chunk.lines[0]}-{chunk.lines[1]}" if chunk.lines else None
        return cls(chunk.id, chunk.source, chunk.text, chunk.heading, chunk.page, lines, chunk.locator)

    def row(self) -> tuple[str, str, str | None, int | None, str | None, str | None, str]:
        return (self.id, self.source, self.heading, self.page, self.lines, self.locator, self.text)


@dataclass
class Hit:
    rank: int
    score: float
    chunk_id: str
    source: str
    text: str
    heading: str | None = None
    page: int | None = None
    lines: str | None = None
    locator: str | None = None
    # Where a hit came from: its dense cosine similarity and its rank in the keyword list
    # (None when that list did not find it, or was not searched). `score` depends on the mode.
    similarity: float | None = None
    keyword_rank: int | None = None
    # The reranker's relevance score when a reranker ordered the hit (rank follows it), else None.
    rerank_score: float | None = None

    @classmethod
    def of(cls, rank: int, score: float, chunk: StoredChunk, similarity: float | None, keyword_rank: int | None) -> Hit:
        return cls(
            rank=rank,
            score=round(score, 4),
            chunk_id=chunk.id,
            source=chunk.source,
            text=chunk.text,
            heading=chunk.heading,
            page=chunk.page,
            lines=chunk.lines,
            locator=chunk.locator,
            similarity=None if similarity is None else round(similarity, 4),
            keyword_rank=keyword_rank,
        )

    @classmethod
    def from_store(cls, rank: int, score: float, chunk_id: str, text: str, meta: dict[str, Any]) -> Hit:
        return cls(
            rank=rank,
            score=round(score, 4),
            chunk_id=chunk_id,
            source=meta.get("source", ""),
            text=text,
            heading=meta.get("heading"),
            page=meta.get("page"),
            lines=meta.get("lines"),
            locator=meta.get("locator"),
            similarity=round(score, 4),
        )

    def to_json(self, query: str) -> dict[str, Any]:
        """A hit as every front-end shows it (`kb search --json`, /v1/search, MCP): a stable
        contract, documented in README."""
        return {
            "query": query,
            "rank": self.rank,
            "score": self.score,
            "source": self.source,
            "chunk_id": self.chunk_id,
            "page": self.page,
            "lines": self.lines,
            "locator": self.locator,
            "heading": self.heading,
            "text": self.text,
            "similarity": self.similarity,
            "keyword_rank": self.keyword_rank,
            "rerank_score": self.rerank_score,
        }

    def location(self) -> str:
        if self.page is not None:
            return f"p. {self.page}"
        if self.lines:
            return f"lines {self.lines}"
        return self.locator or ""
