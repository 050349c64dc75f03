"""What the core answers about knowledge bases, as typed values whose `to_json` is the
front-ends' machine output (`kb list --json`, `kb info --json`, `kb kbs --json`, HTTP)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class DocumentInfo:
    """One ingested document."""

    source: str
    chunks: int
    bytes: int
    ingested_at: str  # ISO 8601, UTC, to the second

    @classmethod
    def of(cls, source: str, chunks: int, size: int, ingested_at: float) -> DocumentInfo:
        return cls(source, chunks, size, datetime.fromtimestamp(ingested_at, UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KbInfo:
    """Where a knowledge base lives, its model and its size."""

    home: str
    kb: str
    model: str
    documents: int
    chunks: int
    bytes: int  # on disk: manifest, index (this instance's share with a Chroma server)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KbSummary:
    """One knowledge base of a home, as `kb kbs` lists it."""

    kb: str
    documents: int
    chunks: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
