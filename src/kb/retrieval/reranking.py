"""The reranker stage of a search: the best fused candidates, reordered by a reranker (see
kb.rerankers), or, when it fails, left in the fused order.

The stage never fails a search. Whatever the reranker raises (a timeout, a server down, an
open breaker, a model folder that is not there) is recorded as its attempt, with a one-line
message, and the candidates keep the order fusion gave them: the fallback pattern of the
provider chain, with the fused order as the last link. The attempt goes into the search's
metrics event (and an answer's attempts), so `kb stats` and /metrics count the fallbacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kb.errors import CircuitOpen, KbError, ProviderError
from kb.providers.base import Attempt

if TYPE_CHECKING:
    from kb.documents import Hit
    from kb.rerankers import Reranker


@dataclass
class Reranked:
    hits: list[Hit]
    attempt: Attempt


def _document(hit: Hit) -> str:
    return f"{hit.heading}\n{hit.text}" if hit.heading else hit.text


def _failure(exc: Exception) -> str:
    if isinstance(exc, ProviderError):
        return exc.failure
    return exc.kind if isinstance(exc, KbError) else "crashed"


def _message(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, KbError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


@dataclass
class RerankStage:
    reranker: Reranker
    candidates: int  # how many of the fused candidates are sent

    def apply(self, query: str, pool: list[Hit]) -> Reranked:
        """`pool` (the best fused candidates, committed) reordered, each hit with its
        `rerank_score`; on failure the pool as it was, and the attempt says why."""
        name = self.reranker.name
        started = time.perf_counter()
        try:
            order = self.reranker.rerank(query, [_document(h) for h in pool], len(pool))
        except Exception as exc:  # any failure of the stage leaves the fused order
            outcome = "skipped" if isinstance(exc, CircuitOpen) else "error"
            return Reranked(pool, Attempt(name, outcome, _failure(exc), _ms(started), _message(exc), "rerank"))
        ranked = [replace(pool[i], rerank_score=round(score, 4)) for i, score in order]
        seen = {i for i, _ in order}
        ranked += [h for i, h in enumerate(pool) if i not in seen]  # any the reranker left out keep their order
        return Reranked(ranked, Attempt(name, "ok", None, _ms(started), stage="rerank"))


def notice(attempt: Attempt) -> str | None:
    """The one line a user sees when the stage fell back, or None."""
    if attempt.outcome == "ok":
        return None
    return f"results in fused order: the reranker did not answer ({attempt.message or attempt.error})"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
