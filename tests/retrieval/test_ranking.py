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

    def nearest(self, vector: np.ndarray, n: int, only=None) -> list[tuple[str, float]]:
        return [(cid, sim) for cid, sim in self._nearest if only is None or cid in only][:n]


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
    return ranked(manifest, store, StubEmbedder(), rare, query, k, mode, False).hits  # type: ignore[arg-type]


@pytest.fixture
def common_words(tmp_path):
    """1,100 chunks about protein and 1,100 about kinase among 10,203 (each word's postings
    alone exceed what hybrid search ranks with), and three chunks with a rare word."""
    texts = {f"p{i}": f"note {i} on a protein" for i in range(1100)}
    texts |= {f"k{i}": f"note {i} on a kinase" for i in range(1100)}
    texts |= {"zeta": "zeta note", "zeta-both": "the zeta protein kinase assay", "zeta-one": "a zeta protein"}
    texts |= {f"other{i}": f"unrelated note {i}" for i in range(8000)}
    manifest = _manifest(tmp_path, texts)
    yield manifest
    manifest.close()


def test_hybrid_ranks_its_keyword_candidates_by_the_common_words_too(common_words):
    """FTS5 ranks by the rare word alone (zeta, zeta-one, zeta-both: the shortest first);
    rescored by every word, the chunks holding protein and kinase come first, in the order
    bm25 over the whole query gives."""
    dense = [(f"other{i}", 0.5 - i / 1000) for i in range(50)]  # the embeddings know nothing useful
    hits = _search(common_words, StubStore(dense), "zeta protein kinase", k=60)  # every candidate
    ranks = {h.chunk_id: h.keyword_rank for h in hits if h.keyword_rank}
    assert ranks == {"zeta-one": 1, "zeta-both": 2, "zeta": 3}
    whole = [cid for cid, _ in common_words.keyword_search('"zeta" OR "protein" OR "kinase"', 3)]
    assert whole == ["zeta-one", "zeta-both", "zeta"]


def test_rescored_bm25_is_the_ranking_queries_own(common_words):
    ids = ["zeta", "zeta-one", "p7", "k3", "other1", "not-a-chunk"]
    rescored = dict(common_words.keyword_rescore('"zeta" OR "protein" OR "kinase"', ids))
    ranked = dict(common_words.keyword_search('"zeta" OR "protein" OR "kinase"', 5000))
    assert set(rescored) == {"zeta", "zeta-one", "p7", "k3"}  # other1 holds no word
    assert rescored == pytest.approx({cid: ranked[cid] for cid in rescored}, rel=1e-12)


def test_hybrid_ranks_with_the_rarest_words_and_rescores_with_more():
    df = {"rare": 12, "protein": 3000, "kinase": 4000, "cell": 9000}
    rare = RareTerms(lambda word, cap: min(df[word], cap))
    words = ["cell", "kinase", "protein", "rare"]
    assert rare.choose(words, "v1") == ["rare"]
    assert rare.choose(words, "v1", rare.rescore_budget) == ["rare", "protein"]


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
