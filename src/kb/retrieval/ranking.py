"""Ranking for `KnowledgeBase.search`: dense, keyword or fused candidates, the committed
chunks among them, and the optional reranker stage.

Texts and locations come from the manifest's chunk table, which lists committed chunks
only, so a write in progress adds none and removes none. A KB whose keyword index is not
built yet (a read-only home of a KB from before it) is searched densely from the store.

A search filter (kb.retrieval.filtering) restricts each candidate search itself, not its
results: the vector store searches the filter's chunks only, FTS5 ranks those documents'
chunks only, so a filter that leaves one document still gives that document's best chunks.
A reranker (kb.retrieval.reranking) reorders the best `candidates` committed hits of the
fused order; the rest follow in that order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kb.documents import Hit
from kb.retrieval.fusion import convex
from kb.retrieval.keyword import RareTerms, match_expression, terms
from kb.retrieval.query import Query, as_query

if TYPE_CHECKING:
    from kb.embedding import Embedder
    from kb.ingest.manifest import Manifest
    from kb.providers.base import Attempt
    from kb.retrieval.filtering import Scope
    from kb.retrieval.reranking import RerankStage
    from kb.store import VectorStore

# Candidates each list contributes to the fusion (and to --unique-sources' pick): enough
# for a passage ranked well by one list only to reach the top-k; each deeper candidate
# costs Chroma and FTS5 time on every search.
CANDIDATES = 50

# Part of the answer cache's key: an answer cached from another ranking's passages is not
# served. Raised whenever a change moves what a search returns. 2: score fusion, keyword
# candidates rescored by more of the query's words.
RANKING_VERSION = "2"


def depth(k: int, mode: str, unique: bool, rerank: RerankStage | None = None) -> int:
    """Candidates each list contributes for a search of `k` hits (more for a reranker's pool)."""
    pool = max(rerank.candidates, k) if rerank else 0
    return max(CANDIDATES, k, pool) if mode == "hybrid" or unique or rerank else k


def nearest_of(
    store: VectorStore,
    embedder: Embedder,
    queries: list[Query],
    k: int,
    mode: str,
    unique: bool,
    *,
    scope: Scope | None = None,
    rerank: RerankStage | None = None,
) -> list[list[tuple[str, float]]]:
    """The dense candidates of several queries, encoded in one batch and looked up in one
    call of the store: what `ranked` takes as `dense` for each."""
    if mode == "keyword":
        return [[] for _ in queries]
    import numpy as np

    if any(q.parts for q in queries):
        vectors = np.vstack([q.vector(embedder) for q in queries])
    else:
        vectors = np.asarray(embedder.embed([q.text for q in queries]), dtype=np.float32)
    return store.nearest_many(vectors, depth(k, mode, unique, rerank), scope.chunk_ids if scope else None)


@dataclass
class Ranked:
    hits: list[Hit]
    top1: float | None  # the dense top-1 similarity, for the drift monitor
    attempts: list[Attempt] = field(default_factory=list)  # the reranker's, when it was asked
    ms: float = 0.0  # how long the search took (set by the caller that timed it)


def ranked(
    manifest: Manifest,
    store: VectorStore,
    embedder: Embedder,
    rare_terms: RareTerms,
    query: Query | str,
    k: int,
    mode: str,
    unique: bool,
    *,
    scope: Scope | None = None,
    rerank: RerankStage | None = None,
    dense: list[tuple[str, float]] | None = None,
) -> Ranked:
    """The top `k` committed hits of `query`, within `scope` (a filter's documents).
    `dense`: the query's `depth(...)` nearest chunks, when a batch of searches found them
    together (see `nearest_of`)."""
    query = as_query(query)
    pool = max(rerank.candidates, k) if rerank else 0
    size = depth(k, mode, unique, rerank)
    only = scope.chunk_ids if scope else None
    if dense is None:
        dense = store.nearest(query.vector(embedder), size, only) if mode != "keyword" else []
    keyword: list[tuple[str, float]] = []
    sources = scope.sources if scope else None
    if mode == "hybrid":
        keyword = _hybrid_keyword(manifest, rare_terms, terms(query.keyword_text), [c for c, _ in dense], size, sources)
    elif mode == "keyword" and (match := match_expression(query.keyword_text)):
        keyword = manifest.keyword_search(match, size, sources)  # exhaustive: every word ranks
    similarity = dict(dense)
    keyword_rank = {cid: rank for rank, (cid, _) in enumerate(keyword, start=1)}
    if mode == "hybrid":
        order = convex(dense, [(cid, -bm25) for cid, bm25 in keyword])
    elif mode == "dense":
        order = dense
    else:
        order = [(cid, -bm25) for cid, bm25 in keyword]  # FTS5's bm25 is negative, lower is better
    found = _committed(manifest, order, similarity, keyword_rank, max(k, pool) + 2)
    hits, attempts = _selected(found, query.text, k, unique, rerank)
    return Ranked(hits, _dense_top1(manifest, dense, hits), attempts)


def _committed(
    manifest: Manifest,
    order: list[tuple[str, float]],
    similarity: dict[str, float],
    keyword_rank: dict[str, int],
    first: int,
) -> Iterator[Hit]:
    """The committed chunks of `order`, as hits, in that order. Their texts are read `first`
    at a time (what is needed and a few spare for uncommitted ids), twice as many each time
    they run out."""
    start, size = 0, first
    while start < len(order):
        part = order[start : start + size]
        start, size = start + size, size * 2
        chunks = manifest.chunks([cid for cid, _ in part])
        for cid, score in part:
            if (chunk := chunks.get(cid)) is not None:
                yield Hit.of(0, score, chunk, similarity.get(cid), keyword_rank.get(cid))


def _selected(
    hits: Iterator[Hit], query: str, k: int, unique: bool, rerank: RerankStage | None
) -> tuple[list[Hit], list[Attempt]]:
    """The first `k` hits (one per document with `unique`), after the reranker reordered
    the first `rerank.candidates`; ranks numbered from 1."""
    attempts: list[Attempt] = []
    if rerank is not None:
        pool = [hit for _, hit in zip(range(max(rerank.candidates, k)), hits)]
        reranked = rerank.apply(query, pool)
        attempts.append(reranked.attempt)
        hits = iter([*reranked.hits, *hits])
    out: list[Hit] = []
    seen: set[str] = set()
    for hit in hits:
        if unique and hit.source in seen:
            continue
        seen.add(hit.source)
        hit.rank = len(out) + 1
        out.append(hit)
        if len(out) == k:
            break
    return out, attempts


def _hybrid_keyword(
    manifest: Manifest,
    rare_terms: RareTerms,
    words: list[str],
    dense: list[str],
    size: int,
    sources: tuple[str, ...] | None = None,
) -> list[tuple[str, float]]:
    """The keyword list of a hybrid search, (chunk id, bm25) best first, within a latency
    budget (see keyword.py): FTS5 ranks the chunks holding the query's rarest words (of the
    filter's documents, if any), then those and the dense candidates are scored by bm25
    over more of its words."""
    version = manifest.content_key()
    rare = match_expression(rare_terms.choose(words, version))
    found = manifest.keyword_search(rare, size, sources) if rare else []
    more = match_expression(rare_terms.choose(words, version, rare_terms.rescore_budget))
    if not more or more == rare:  # no other word fits: the ranking is already over them all
        return found
    candidates = list(dict.fromkeys([cid for cid, _ in found] + dense))
    return sorted(manifest.keyword_rescore(more, candidates), key=lambda pair: pair[1])[:size]  # lower is better


def _dense_top1(manifest: Manifest, dense: list[tuple[str, float]], hits: list[Hit]) -> float | None:
    """The similarity of the best committed dense candidate: what the drift monitor has
    always recorded, whatever the mode ranks first."""
    if not dense:
        return None
    best = max((h.similarity for h in hits if h.similarity is not None), default=None)
    if best is not None and best >= dense[0][1] - 1e-4:
        return best  # the dense first is among the hits: no lookup needed
    committed = manifest.chunks([cid for cid, _ in dense[:10]])
    return next((sim for cid, sim in dense[:10] if cid in committed), best)


def dense_from_store(
    manifest: Manifest,
    store: VectorStore,
    embedder: Embedder,
    kb_dir: Path,
    query: Query | str,
    k: int,
    unique: bool,
    *,
    scope: Scope | None = None,
    rerank: RerankStage | None = None,
) -> Ranked:
    """Dense search with texts from the vector store: for a KB whose keyword index is not
    built (a read-only home of a KB from before it)."""
    from kb.store.guard import MARKER

    query = as_query(query)
    mark = kb_dir / MARKER
    writing = mark.exists()
    depth = max(CANDIDATES, k, rerank.candidates if rerank else 0) if unique or rerank else k
    vector = query.vector(embedder)[None]
    hits = store.query(vector, depth, scope.chunk_ids if scope else None)[0]
    if writing or mark.exists():
        hits = _committed_in_store(manifest, hits)
    selected, attempts = _selected(iter(hits), query.text, k, unique, rerank)
    return Ranked(selected, hits[0].similarity if hits else None, attempts)


def _committed_in_store(manifest: Manifest, hits: list[Hit]) -> list[Hit]:
    """While a write is in progress the store may hold chunks the manifest does not list
    yet (or any more); results show committed chunks only."""
    keep = []
    for hit in hits:
        record = manifest.get(hit.source)
        if record is not None and hit.chunk_id in record.chunk_ids:
            keep.append(hit)
    return keep
