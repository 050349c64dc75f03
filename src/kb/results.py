"""What the core answers about knowledge bases, as typed values whose `to_json` is the
front-ends' machine output (`kb list --json`, `kb info --json`, `kb kbs --json`, HTTP)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from typing import Any


class _Value:
    def to_json(self) -> dict[str, Any]:
        assert is_dataclass(self) and not isinstance(self, type)  # every subclass is one
        return asdict(self)


@dataclass(frozen=True)
class DocumentInfo(_Value):
    """One ingested document."""

    source: str
    chunks: int
    bytes: int
    ingested_at: str  # ISO 8601, UTC, to the second

    @classmethod
    def of(cls, source: str, chunks: int, size: int, ingested_at: float) -> DocumentInfo:
        return cls(source, chunks, size, datetime.fromtimestamp(ingested_at, UTC).isoformat(timespec="seconds"))


@dataclass(frozen=True)
class KbInfo(_Value):
    """Where a knowledge base lives, its model and its size."""

    home: str
    kb: str
    model: str
    documents: int
    chunks: int
    bytes: int  # on disk: manifest, index (this instance's share with a Chroma server)


@dataclass(frozen=True)
class KbSummary(_Value):
    """One knowledge base of a home, as `kb kbs` lists it."""

    kb: str
    documents: int
    chunks: int
    bytes: int
