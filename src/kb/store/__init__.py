"""Vector stores: one small interface, two Chroma implementations.

`VectorStore` is the seam; `LocalChromaStore` (local.py) keeps a KB's collection in a Chroma
PersistentClient folder under KB_HOME, `ServerChromaStore` (server.py) on a Chroma server
(`store.url`) that every instance shares. Both run the same collection operations
(collection.py); they differ in how a call is guarded, how a stale collection is found
again and how errors are worded. Chroma is imported only in this package, and its exceptions
become StoreError here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from kb.documents import Chunk, Hit, StoredChunk

COLLECTION_PREFIX = "kb_"
# HNSW search breadth (docs/benchmarks.md, "Search at a million chunks"): half the misses of
# Chroma's default 100 against exact search, for ~0.2 ms. A store that exists keeps what it
# was created with (Chroma ignores a creation configuration then); a rebuild gets this.
EF_SEARCH = 200


class VectorStore(Protocol):
    """One knowledge base's vectors, with each chunk's text and location. `only` restricts a
    search to those chunk ids (a search filter); ids the store no longer holds are ignored."""

    def add(self, chunks: list[Chunk], vectors: np.ndarray) -> None: ...
    def delete(self, ids: list[str]) -> None: ...
    def existing(self, ids: list[str]) -> set[str]: ...
    def query(self, vectors: np.ndarray, k: int, only: Sequence[str] | None = None) -> list[list[Hit]]: ...
    def nearest(self, vector: np.ndarray, n: int, only: Sequence[str] | None = None) -> list[tuple[str, float]]: ...
    def nearest_many(
        self, vectors: np.ndarray, n: int, only: Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]: ...
    def stored(self, ids: list[str]) -> list[StoredChunk]: ...
    def count(self) -> int: ...
    def ids(self) -> set[str]: ...
    def close(self) -> None: ...
