"""`kb eval answers`: each question through `ask` and the configured provider chain.

The answer cache is bypassed, so every question is answered and timed afresh (the query
embedding cache is not: a second run skips embedding the questions). A question
no provider answers is scored as a miss and its error kept; the run goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from kb.errors import ProviderError
from kb.evaluation.corpus import CorpusIds
from kb.evaluation.datasets import QaItem
from kb.evaluation.metrics import contains_answer, mean, token_f1
from kb.metrics.stats import percentile

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.knowledge_base import KnowledgeBase

Progress = Callable[[int, int], None]  # (questions done, total)


def _score(item: QaItem, answer: Answer | None, gold: str | None, error: str | None, corpus: CorpusIds) -> dict:
    text = answer.answer if answer else ""
    cited = list(dict.fromkeys(c.hit.source for c in answer.citations)) if answer else []
    row: dict = {
        "question": item.question,
        "answer": text,
        "gold": item.answers,
        "contained": contains_answer(text, item.answers),
        "f1": round(token_f1(text, item.answers), 4),
        "words": len(text.split()),
        "doc": item.doc,
        "cited": [corpus.id_for(source) for source in cited],
        "cited_doc": None,
        "provider": answer.provider if answer else None,
        "latency_ms": answer.latency_ms["total"] if answer else None,
        "input_tokens": answer.usage.input_tokens if answer else 0,
        "output_tokens": answer.usage.output_tokens if answer else 0,
        "cost_usd": answer.usage.cost_usd if answer else None,
        "error": error,
    }
    if item.doc is not None:
        row["cited_doc"] = gold in cited
    return row


def _summary(rows: list[dict], unknown_docs: list[str]) -> dict:
    with_doc = [r["cited_doc"] for r in rows if r["cited_doc"] is not None]
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    return {
        "questions": len(rows),
        "contained": round(mean([float(r["contained"]) for r in rows]) or 0.0, 4),
        "f1": round(mean([r["f1"] for r in rows]) or 0.0, 4),
        "cited_doc": round(sum(with_doc) / len(with_doc), 4) if with_doc else None,
        "with_doc": len(with_doc),
        "mean_words": round(mean([float(r["words"]) for r in rows]) or 0.0, 1),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "cost_usd": round(sum(costs), 6) if costs else None,  # None: no provider reported a price
        "providers": dict(Counter(r["provider"] for r in rows if r["provider"])),
        "errors": sum(1 for r in rows if r["error"]),
        "unknown_docs": unknown_docs,
    }


def evaluate(
    kb: KnowledgeBase,
    items: list[QaItem],
    provider: str | None = None,
    top_k: int | None = None,
    progress: Progress | None = None,
) -> tuple[dict, list[dict]]:
    """(summary, one row per question)."""
    corpus = CorpusIds([d.source for d in kb.documents()])
    golds = {item.doc: corpus.source(item.doc) for item in items if item.doc is not None}
    # Latency is reported warm: the model and the store are loaded before the first
    # question, as in a long-running process, so the first answer does not carry the load.
    kb.search(items[0].question, k=1, record=False)
    rows = []
    for done, item in enumerate(items, start=1):
        answer, error = None, None
        try:
            answer = kb.ask(item.question, top_k, provider=provider, use_cache=False)
        except ProviderError as exc:
            error = str(exc)
        rows.append(_score(item, answer, golds.get(item.doc) if item.doc else None, error, corpus))
        if progress:
            progress(done, len(items))
    return _summary(rows, sorted(d for d, s in golds.items() if s is None)), rows
