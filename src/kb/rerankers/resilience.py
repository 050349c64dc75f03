"""The reranker's resilience wrappers, each with the Reranker interface and one job, on the
same policies as the provider chain's (kb.providers.retrying.retried, breaker.guarded)."""

from __future__ import annotations

from kb.errors import KbError
from kb.providers.breaker import BreakerBoard, guarded
from kb.providers.retrying import retried
from kb.rerankers import Reranker


class Retrying:
    """Retryable failures (timeouts, connection errors, 5xx, 429) again, within `deadline_s`."""

    def __init__(self, inner: Reranker, max_retries: int, deadline_s: float) -> None:
        self.inner, self.name = inner, inner.name
        self.max_retries, self.deadline_s = max_retries, deadline_s

    def rerank(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        return retried(lambda: self.inner.rerank(query, documents, top_n), self.max_retries, self.deadline_s)


class Breaker:
    """Skipped at once (CircuitOpen) while its breaker is open: a reranker that is down costs
    a search nothing after `failure_threshold` failures."""

    def __init__(self, inner: Reranker, board: BreakerBoard) -> None:
        self.inner, self.name, self.board = inner, inner.name, board

    def rerank(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        return guarded(self.board, self.name, lambda: self.inner.rerank(query, documents, top_n))


class Broken:
    """A reranker that could not be built: each call fails with why."""

    def __init__(self, error: KbError) -> None:
        from kb.config.settings import RERANKER

        self.name, self.error = RERANKER, error

    def rerank(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        raise self.error
