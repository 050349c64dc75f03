"""The collection operations both Chroma stores run: batched writes and reads, queries, and
the translation of Chroma's results into kb's values. A store supplies `_call`, which runs
one operation on its collection the way that store must (locks, a second look-up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kb.documents import Chunk, Hit, StoredChunk
from kb.store import COLLECTION_PREFIX, EF_SEARCH

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")
Operation = Callable[[Any], T]


def open_collection(client: Any, kb: str, create: bool) -> Any:
    name = COLLECTION_PREFIX + kb
    if create:
        # The space goes in the configuration too: next to the legacy metadata key, a
        # configuration silently makes the space l2 (chromadb 1.5.9).
        return client.get_or_create_collection(
            name, configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}}, embedding_function=None
        )
    return client.get_collection(name, embedding_function=None)


class ChromaCollection:
    _batch: int

    def _call(self, what: str, operation: Operation[T], write: bool = False) -> T:
        raise NotImplementedError

    def add(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        for i in range(0, len(chunks), self._batch):
            part, rows = chunks[i : i + self._batch], vectors[i : i + self._batch]
            self._call("writing to the vector store failed", _upsert(part, rows), write=True)

    def existing(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), self._batch):
            part = ids[i : i + self._batch]
            res = self._call("reading the vector store failed", _get(ids=part, include=[]))
            found.update(res["ids"])
        return found

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), self._batch):
            part = ids[i : i + self._batch]
            self._call("deleting from the vector store failed", _delete(part), write=True)

    def query(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        res = self._call(  # no count() first: see nearest()
            "searching the vector store failed",
            lambda col: col.query(
                query_embeddings=vectors, n_results=k, include=["documents", "metadatas", "distances"]
            ),
        )
        out = []
        empty: list = [[] for _ in res["ids"]]
        for ids, docs, metas, dists in zip(
            res["ids"], res["documents"] or empty, res["metadatas"] or empty, res["distances"] or empty
        ):
            # An index loaded before another process deleted chunks still finds them, but
            # their text and metadata are gone: such ids are not results.
            found = [(cid, doc, meta, dist) for cid, doc, meta, dist in zip(ids, docs, metas, dists) if meta]
            # cosine distance → similarity in [-1, 1]
            out.append([Hit.from_store(rank + 1, 1.0 - dist, cid, doc or "", dict(meta))
                        for rank, (cid, doc, meta, dist) in enumerate(found)])  # fmt: skip
        return out

    def nearest(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the `n` nearest chunks, without their texts:
        hybrid search reads the texts of the few it keeps from the manifest. No count()
        first: it costs more than the query at 100k chunks (7 ms against 3), and chromadb 1.5
        answers an empty collection, or one smaller than `n`, with what it has."""
        return self.nearest_many(vector[None], n)[0]

    def nearest_many(self, vectors: np.ndarray, n: int) -> list[list[tuple[str, float]]]:
        """`nearest` for each row of `vectors`, in one call: a batch of searches pays
        Chroma's per-call work (and the store's lock) once."""
        res = self._call(
            "searching the vector store failed",
            lambda col: col.query(query_embeddings=vectors, n_results=n, include=["distances"]),
        )
        distances = res["distances"] or [[] for _ in res["ids"]]
        return [[(cid, 1.0 - dist) for cid, dist in zip(ids, dists)] for ids, dists in zip(res["ids"], distances)]

    def stored(self, ids: list[str]) -> list[StoredChunk]:
        """The texts and locations of the chunks among `ids` that the store holds (to build
        the keyword index of a KB from before it existed, without re-embedding)."""
        out = []
        for i in range(0, len(ids), self._batch):
            part = ids[i : i + self._batch]
            res = self._call("reading the vector store failed", _get(ids=part, include=["documents", "metadatas"]))
            for cid, doc, meta in zip(res["ids"], res["documents"] or [], res["metadatas"] or []):
                if meta:
                    out.append(_stored(cid, doc, meta))
        return out

    def count(self) -> int:
        return int(self._call("reading the vector store failed", lambda col: col.count()))

    def ids(self, page: int = 10_000) -> set[str]:
        """Every chunk id in the collection (kb doctor)."""
        found: set[str] = set()
        while True:
            res = self._call("reading the vector store failed", _get(include=[], limit=page, offset=len(found)))
            part = res["ids"]
            found.update(part)
            if len(part) < page:
                return found


# Operations built outside the loops that run them, so each closes over its own batch.
def _upsert(part: list[Chunk], rows: np.ndarray) -> Operation[Any]:
    return lambda col: col.upsert(ids=[c.id for c in part], embeddings=rows, documents=[c.text for c in part],
                                  metadatas=[c.metadata() for c in part])  # fmt: skip


def _get(**arguments: Any) -> Operation[Any]:
    return lambda col: col.get(**arguments)


def _delete(ids: list[str]) -> Operation[Any]:
    return lambda col: col.delete(ids=ids)


def _stored(cid: str, doc: str | None, meta: Any) -> StoredChunk:
    page = meta.get("page")
    return StoredChunk(
        cid,
        str(meta.get("source", "")),
        doc or "",
        _str(meta.get("heading")),
        int(page) if isinstance(page, int | float) else None,
        _str(meta.get("lines")),
        _str(meta.get("locator")),
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
