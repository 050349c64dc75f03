"""The vector index kb creates: cosine space and the measured ef_search, and a store from
an older kb keeps its cosine space (real Chroma, read back with a plain client)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kb.documents import Chunk
from kb.store import COLLECTION_PREFIX, EF_SEARCH
from kb.store.local import LocalChromaStore


def _plain(path: Path, name: str):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    return client, client.get_collection(COLLECTION_PREFIX + name)


def _chunks(n: int) -> list[Chunk]:
    return [Chunk(id=f"c{i}", source="/d.md", text=f"chunk {i}", ordinal=i, lines=(1, 2)) for i in range(n)]


def test_a_new_store_is_cosine_with_the_measured_ef_search(tmp_path):
    store = LocalChromaStore(tmp_path / "chroma", "t")
    store.add(_chunks(2), np.array([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=np.float32))
    # cosine: [2, 0, 0, 0] is at distance 0 from [1, 0, 0, 0] (l2 would say 1)
    assert [round(s, 4) for _, s in store.nearest(np.array([2, 0, 0, 0], dtype=np.float32), 2)] == [1.0, 0.7071]
    store.close()
    client, col = _plain(tmp_path / "chroma", "t")
    hnsw = col.configuration.get("hnsw") or {}
    assert (hnsw.get("space"), hnsw.get("ef_search")) == ("cosine", EF_SEARCH)
    client.close()


def test_a_store_from_an_older_kb_stays_cosine(tmp_path):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False))
    old = client.get_or_create_collection(  # how kb created collections before
        COLLECTION_PREFIX + "t", metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    old.add(ids=["a", "b"], embeddings=np.array([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=np.float32))
    client.close()

    store = LocalChromaStore(tmp_path / "chroma", "t")
    assert [round(s, 4) for _, s in store.nearest(np.array([2, 0, 0, 0], dtype=np.float32), 2)] == [1.0, 0.7071]
    store.close()
