"""The collection operations both Chroma stores run: batched writes and reads, queries, and
the translation of Chroma's results into kb's values. A store supplies `_call`, which runs
one operation on its collection the way that store must (locks, a second look-up)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from kb.documents import Chunk, Hit, StoredChunk
from kb.store import COLLECTION_PREFIX, EF_SEARCH

# A search filter's chunks, up to this many, are searched exactly: their vectors read and
# compared with the query (~25 µs a chunk to read, 6 ms for 256). Chroma's filtered graph
# search is approximate, and with a small allowed set it can miss every one of them (seen
# here with three chunks among sixty-three near-duplicates). Larger sets go through Chroma's
# search among their ids (3-5 ms for any number on 12,000 chunks), read exactly instead when
# it returns fewer than it should.
EXACT_UP_TO = 256

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

    def query(self, vectors: np.ndarray, k: int, only: Sequence[str] | None = None) -> list[list[Hit]]:
        include = ["documents", "metadatas", "distances"]
        if only is not None and len(only) <= EXACT_UP_TO:
            res = self._exact(vectors, k, only, ["documents", "metadatas"])
        else:
            res = self._call(  # no count() first: see nearest()
                "searching the vector store failed",
                _within(only, len(vectors), query_embeddings=vectors, n_results=k, include=include),
            )
            if only is not None and any(len(ids) < min(k, len(only)) for ids in res["ids"]):
                res = self._exact(vectors, k, only, ["documents", "metadatas"])
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

    def nearest(self, vector: np.ndarray, n: int, only: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the `n` nearest chunks, without their texts:
        hybrid search reads the texts of the few it keeps from the manifest. No count()
        first: it costs more than the query at 100k chunks (7 ms against 3), and chromadb 1.5
        answers an empty collection, or one smaller than `n`, with what it has. `only`: among
        these chunk ids alone (a search filter)."""
        return self.nearest_many(vector[None], n, only)[0]

    def nearest_many(
        self, vectors: np.ndarray, n: int, only: Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """`nearest` for each row of `vectors`, in one call: a batch of searches pays
        Chroma's per-call work (and the store's lock) once."""
        if only is not None and len(only) <= EXACT_UP_TO:
            res = self._exact(vectors, n, only, [])
        else:
            res = self._call(
                "searching the vector store failed",
                _within(only, len(vectors), query_embeddings=vectors, n_results=n, include=["distances"]),
            )
            if only is not None and any(len(ids) < min(n, len(only)) for ids in res["ids"]):
                res = self._exact(vectors, n, only, [])
        distances = res["distances"] or [[] for _ in res["ids"]]
        return [[(cid, 1.0 - dist) for cid, dist in zip(ids, dists)] for ids, dists in zip(res["ids"], distances)]

    def _exact(self, vectors: np.ndarray, n: int, only: Sequence[str], include: list[str]) -> dict[str, Any]:
        """Chroma's query result for the `n` nearest of the chunks `only`, by exact cosine
        distance over their stored vectors (ids the store lacks are left out)."""
        ids: list[str] = []
        rows: list[Any] = []
        extra: dict[str, list[Any]] = {name: [] for name in include}
        wanted = list(only)
        for i in range(0, len(wanted), self._batch):
            part = wanted[i : i + self._batch]
            res = self._call("reading the vector store failed", _get(ids=part, include=["embeddings", *include]))
            ids += res["ids"]
            rows += list(res["embeddings"] if res["embeddings"] is not None else [])
            for name in include:
                extra[name] += list(res[name] or [])
        out: dict[str, Any] = {"ids": [], "distances": [], **{name: [] for name in include}}
        if not ids:
            return {name: [[] for _ in vectors] for name in out}
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1)
        for vector in np.asarray(vectors, dtype=np.float32):
            sims = matrix @ vector / np.maximum(norms * np.linalg.norm(vector), 1e-12)
            order = np.argsort(-sims, kind="stable")[:n]
            out["ids"].append([ids[j] for j in order])
            out["distances"].append([float(1.0 - sims[j]) for j in order])
            for name in include:
                out[name].append([extra[name][j] for j in order])
        return out

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


def _within(only: Sequence[str] | None, queries: int, **arguments: Any) -> Operation[Any]:
    """A query, among the chunk ids `only` when given. Chroma's query takes the ids a filter
    leaves (3-5 ms on 12,000 chunks whatever their number, where a `where` on each chunk's
    source took 5 ms for one document and 59 ms for 5,000), but fails with "Error finding id"
    if one of them is not in the store: a write removing chunks of a file the manifest still
    lists, or a damaged store. Then the ids are checked first and the query repeated with
    those present, in the same call (the store's lock held), so a filter never fails a search
    that would work without it."""

    def run(col: Any) -> Any:
        if only is None:
            return col.query(**arguments)
        ids = list(only)
        if ids:
            try:
                return col.query(ids=ids, **arguments)
            except Exception as exc:
                if "error finding id" not in str(exc).lower():
                    raise
                ids = col.get(ids=ids, include=[])["ids"]
        if not ids:
            return {"ids": [[] for _ in range(queries)], "distances": None, "documents": None, "metadatas": None}
        return col.query(ids=ids, **arguments)

    return run


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
