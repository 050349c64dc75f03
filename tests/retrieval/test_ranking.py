"""Hybrid ranking on a real manifest (SQLite FTS5) with a stub vector store: which query
words the keyword side keeps, and how the two lists are fused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.documents import StoredChunk
from kb.ingest.manifest import FileRecord, SqliteManifest
from kb.retrieval.keyword import RareTerms
from kb.retrieval.ranking import ranked


class StubStore:
    """The dense list a test chooses: (chunk id, cosine) best first."""

    def __init__(self, nearest: list[tuple[str, float]]) -> None:
        self._nearest = nearest

    def nearest(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        return self._nearest[:n]


class StubEmbedder:
    model_id = "stub"
    dimension = 4

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dimension), dtype=np.float32)


def _manifest(path: Path, texts: dict[str, str]) -> SqliteManifest:
    manifest = SqliteManifest(path / "manifest.db")
    chunks = [StoredChunk(cid, f"/docs/{cid}.txt", text) for cid, text in texts.items()]
    files = [
        (FileRecord(c.source, 1, 1, "sha", "chunker", "stub", [c.id], [], 0.0), [c]) for c in chunks
    ]  # one file per chunk, as many short documents would be
    manifest.put_many(files)
    return manifest


def _search(manifest: SqliteManifest, store: StubStore, query: str, k: int = 5, mode: str = "hybrid") -> list:
    rare = RareTerms(manifest.keyword_count)
    hits, _ = ranked(manifest, store, StubEmbedder(), rare, query, k, mode, False)  # type: ignore[arg-type]
    return hits


@pytest.fixture
def common_words(tmp_path):
    """1,500 chunks about protein, 1,500 about kinase, one about both: each word's postings
    alone exceed the old budget of 1,000."""
    texts = {f"p{i}": f"note {i} on a protein" for i in range(1500)}
    texts |= {f"k{i}": f"note {i} on a kinase" for i in range(1500)}
    texts["both"] = "the protein kinase assay"
    texts |= {f"other{i}": f"unrelated note {i}" for i in range(50)}
    manifest = _manifest(tmp_path, texts)
    yield manifest
    manifest.close()


def test_hybrid_keeps_query_words_found_in_a_few_thousand_chunks(common_words):
    dense = [(f"other{i}", 0.5 - i / 1000) for i in range(50)]  # the embeddings know nothing useful
    hits = _search(common_words, StubStore(dense), "protein kinase")
    both = next(h for h in hits if h.chunk_id == "both")
    assert both.keyword_rank == 1  # the keyword side searched for both words, not for none


def test_hybrid_drops_the_commonest_word_beyond_the_budget():
    df = {"rare": 12, "protein": 3000, "kinase": 4000, "cell": 9000}
    rare = RareTerms(lambda word, cap: min(df[word], cap))
    assert rare.choose(["cell", "kinase", "protein", "rare"], "v1") == ["rare", "protein", "kinase"]
