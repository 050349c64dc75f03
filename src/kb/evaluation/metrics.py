"""Ranking metrics over graded relevance, and SQuAD-style answer scores.

Ranking follows the trec_eval definitions BEIR reports: nDCG with linear gain
(grade / log2(rank + 1)), recall over the documents graded above 0, reciprocal rank of
the first relevant document. A ranked list is taken in the order given (ties in score are
the retriever's to break); a document listed twice counts once, at its first rank.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter


def _first_occurrences(ranked: list[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def relevant(qrels: dict[str, int]) -> dict[str, int]:
    """The judged documents that count as relevant (grade above 0)."""
    return {doc: grade for doc, grade in qrels.items() if grade > 0}


def ndcg_at(ranked: list[str], qrels: dict[str, int], k: int = 10) -> float:
    rel = relevant(qrels)
    if not rel:
        return 0.0
    dcg = sum(rel.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(_first_occurrences(ranked)[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return dcg / ideal


def recall_at(ranked: list[str], qrels: dict[str, int], k: int) -> float:
    rel = relevant(qrels)
    if not rel:
        return 0.0
    return len(rel.keys() & set(_first_occurrences(ranked)[:k])) / len(rel)


def mrr_at(ranked: list[str], qrels: dict[str, int], k: int = 10) -> float:
    rel = relevant(qrels)
    for i, doc in enumerate(_first_occurrences(ranked)[:k]):
        if doc in rel:
            return 1.0 / (i + 1)
    return 0.0


def ranking_scores(top: list[str], deep: list[str], qrels: dict[str, int]) -> dict[str, float]:
    """The four figures `kb eval retrieval` reports for one query: the cut-off-10 ones on
    the `top` ranking, Recall@100 on the `deep` one."""
    return {
        "ndcg@10": ndcg_at(top, qrels, 10),
        "recall@10": recall_at(top, qrels, 10),
        "recall@100": recall_at(deep, qrels, 100),
        "mrr@10": mrr_at(top, qrels, 10),
    }


_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def contains_answer(prediction: str, golds: list[str]) -> bool:
    """Whether a normalised gold answer appears in the normalised prediction as whole
    words: "10" is not found in "100"."""
    pred = f" {normalize_answer(prediction)} "
    return any(g and f" {g} " in pred for g in map(normalize_answer, golds))


def token_f1(prediction: str, golds: list[str]) -> float:
    """SQuAD token F1 against the best-matching gold answer."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
