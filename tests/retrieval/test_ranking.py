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


def test_fusion_weighs_how_far_ahead_each_list_puts_a_passage(tmp_path):
    """The dense list barely prefers `a` over `both`; the keyword list puts `both` (both
    words) far ahead of `a` (one). Reciprocal rank fusion ranked `a` first (ranks 1 and 2
    against 3 and 1); score fusion ranks `both` first."""
    texts = {"both": "protein kinase assay", "a": "a protein note", "other": "an unrelated note"}
    texts |= {f"filler{i}": f"filler note {i}" for i in range(20)}
    manifest = _manifest(tmp_path, texts)
    dense = [("a", 0.80), ("other", 0.79), ("both", 0.78)] + [(f"filler{i}", 0.5 - i / 100) for i in range(20)]
    hits = _search(manifest, StubStore(dense), "protein kinase")
    assert [h.chunk_id for h in hits[:3]] == ["both", "a", "other"]
    assert [h.keyword_rank for h in hits[:3]] == [1, 2, None]
    assert 0 < hits[-1].score <= hits[0].score <= 1
    manifest.close()


def test_scores_are_normalised_over_each_list():
    from kb.retrieval.fusion import normalised

    assert normalised([]) == {}
    assert normalised([("x", -3.0)]) == {"x": 1.0}  # the best (and only) candidate of its list
    assert normalised([("x", 2.0), ("y", 2.0)]) == {"x": 1.0, "y": 1.0}
    assert normalised([("x", 0.9), ("y", 0.6), ("z", 0.5)]) == pytest.approx({"x": 1.0, "y": 0.25, "z": 0.0})


def test_a_passage_one_list_missed_gets_that_lists_floor():
    from kb.retrieval.fusion import convex

    fused = dict(convex([("x", 0.9), ("y", 0.5)], [("z", 12.0), ("x", 4.0)]))
    assert fused == pytest.approx({"x": 0.5, "y": 0.0, "z": 0.5})
    assert convex([], [("z", 1.0)]) == [("z", 0.5)]
    tie = convex([("x", 0.9), ("y", 0.5)], [("y", 3.0), ("x", 1.0)])
    assert [item for item, _ in tie] == ["x", "y"]  # equal scores: the dense list's order
