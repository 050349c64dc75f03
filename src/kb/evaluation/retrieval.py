"""`kb eval retrieval`: each search mode over labelled queries, scored per document.

Passages are pooled to documents: a document ranks where its best passage ranks. The
cut-off-10 figures pool the top 50 passages, the candidates a search of kb ranks for its
first results (in hybrid mode the fusion depth, which a larger k would change), so they
score what users get; Recall@100 pools up to 1,000 passages, enough for 100 documents in
all but corpora where one document holds hundreds of the top passages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kb.errors import InputError
from kb.evaluation.corpus import CorpusIds
from kb.evaluation.metrics import mean, ranking_scores, relevant
from kb.options import SEARCH_MODES, SearchMode, SearchOptions

if TYPE_CHECKING:
    from kb.documents import Hit
    from kb.knowledge_base import KnowledgeBase

MODES = SEARCH_MODES
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
DOCUMENTS = 100  # the deepest cut-off reported (Recall@100)
TOP_PASSAGES = 50  # pooled for the cut-off-10 figures (see above)
DEEP_PASSAGES = 1000  # pooled for Recall@100
BATCH = 16  # queries per search call, between progress reports

Progress = Callable[[str, int, int], None]  # (mode, queries done, queries total)


@dataclass
class RetrievalReport:
    kb: str
    queries: int  # evaluated: with at least one relevant judgement
    skipped: list[str]  # query ids without a relevant judgement
    unjudged: list[str]  # query ids of the qrels missing from the queries file
    unknown_corpus_ids: list[str]  # judged relevant but no document of the KB
    modes: dict[str, dict] = field(default_factory=dict)  # mode → metrics
    per_query: list[dict] = field(default_factory=list)

    def to_json(self, per_query: bool = True) -> dict:
        data = {
            "kb": self.kb,
            "queries": self.queries,
            "skipped_queries": self.skipped,
            "qrels_without_query": self.unjudged,
            "unknown_corpus_ids": self.unknown_corpus_ids,
            "modes": self.modes,
        }
        if per_query:
            data["per_query"] = self.per_query
        return data


def _unknown(corpus_id: str) -> str:
    return "\0unknown:" + corpus_id  # never equal to a document's source path


def _judgements(qrels: dict[str, dict[str, int]], corpus: CorpusIds) -> tuple[dict[str, dict[str, int]], list[str]]:
    """The qrels keyed by document source; the relevant corpus ids no document answers to."""
    by_source: dict[str, dict[str, int]] = {}
    unknown: set[str] = set()
    for qid, docs in qrels.items():
        for corpus_id, grade in docs.items():
            source = corpus.source(corpus_id)
            if source is None and grade > 0:
                unknown.add(corpus_id)
            by_source.setdefault(qid, {})[source or _unknown(corpus_id)] = grade
    return by_source, sorted(unknown)


def pool(hits: list[Hit], depth: int = DOCUMENTS) -> list[str]:
    """The sources of `hits` in order of their best passage."""
    return list(dict.fromkeys(h.source for h in hits))[:depth]


def _search(
    kb: KnowledgeBase, mode: SearchMode, texts: list[str], depths: tuple[int, int], progress: Progress | None
) -> tuple[list[list[str]], list[list[str]], float]:
    """(documents from the top passages, from the deep passages, seconds of the top searches)."""
    top: list[list[str]] = []
    deep: list[list[str]] = []
    seconds = 0.0
    for start in range(0, len(texts), BATCH):
        batch = texts[start : start + BATCH]
        # The deep search first: it loads the model and leaves the query embeddings in the
        # cache, so the timed search measures each mode's ranking, not the first mode's load.
        deep.extend(pool(hits) for hits in kb.search_many(batch, SearchOptions(k=depths[1], mode=mode), record=False))
        started = time.perf_counter()
        top.extend(pool(hits) for hits in kb.search_many(batch, SearchOptions(k=depths[0], mode=mode), record=False))
        seconds += time.perf_counter() - started
        if progress:
            progress(mode, len(top), len(texts))
    return top, deep, seconds


def evaluate(
    kb: KnowledgeBase,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    modes: list[SearchMode],
    progress: Progress | None = None,
) -> RetrievalReport:
    """Scores each of `modes` (searches are not recorded in `kb stats`)."""
    corpus = CorpusIds([d.source for d in kb.documents()])
    judged, unknown = _judgements(qrels, corpus)
    if unknown and len(unknown) == len({d for docs in qrels.values() for d, g in docs.items() if g > 0}):
        raise InputError(
            f"no relevant corpus id of the qrels names a document of knowledge base {kb.name!r} "
            f"(e.g. {unknown[0]!r}); ids are file names without extension or paths relative to the ingested "
            "folder: is this the right knowledge base?"
        )
    ids = [qid for qid in queries if relevant(judged.get(qid, {}))]
    report = RetrievalReport(
        kb.name,
        len(ids),
        [qid for qid in queries if qid not in ids],
        sorted(set(qrels) - set(queries)),
        unknown,
    )
    if not ids:
        raise InputError("no query of the queries file has a relevant judgement in the qrels; check the query ids")
    chunks = max(1, kb.info().chunks)
    depths = (min(TOP_PASSAGES, chunks), min(DEEP_PASSAGES, chunks))
    texts = [queries[qid] for qid in ids]
    for mode in modes:
        top, deep, seconds = _search(kb, mode, texts, depths, progress)
        rows = []
        for qid, docs, deep_docs in zip(ids, top, deep):
            scores = ranking_scores(docs, deep_docs, judged[qid])
            rows.append(scores)
            report.per_query.append(
                {
                    "query_id": qid,
                    "mode": mode,
                    **{m: round(v, 4) for m, v in scores.items()},
                    "ranked": [corpus.id_for(s) for s in docs[:10]],
                    "relevant": {
                        corpus.id_for(s) if not s.startswith("\0") else s.split(":", 1)[1]: g
                        for s, g in relevant(judged[qid]).items()
                    },
                }
            )
        summary: dict = {m: round(mean([r[m] for r in rows]) or 0.0, 4) for m in METRICS}
        summary["ms_per_query"] = round(seconds * 1000 / len(ids), 1)
        report.modes[mode] = summary
    return report
