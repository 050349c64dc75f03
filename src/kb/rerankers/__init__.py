"""Rerankers: a second look at the best fused candidates of a search, by a model that reads
the query and each passage together (a cross-encoder), which an embedding cannot.

One small interface, `Reranker.rerank(query, documents, top_n) -> [(index, score)]` best
first, and implementations behind it: `HttpReranker` (http.py) speaks the `/rerank` dialect
Cohere, Jina, vLLM, llama.cpp's server, Infinity, OpenVINO Model Server and LiteLLM share,
and Text Embeddings Inference's own; `CrossEncoderReranker` (cross_encoder.py) runs a local
sentence-transformers CrossEncoder folder. Resilience is wrappers with the same interface
(resilience.py), as for providers: `Breaker(Retrying(HttpReranker))`, on the home's breaker
board. When the stage fails, search keeps the fused order (kb.retrieval.reranking).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from kb.config.settings import RERANKER

if TYPE_CHECKING:
    from kb.config.settings import RerankerSettings
    from kb.providers.breaker import BreakerBoard


class Reranker(Protocol):
    name: str

    def rerank(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        """(index into `documents`, relevance score) of the best `top_n`, best first."""
        ...


def build_reranker(settings: RerankerSettings, board: BreakerBoard) -> Reranker | None:
    """The configured reranker with its retries and breaker, or None when there is none.
    A local model that cannot be used (a missing folder) is built anyway: its error is the
    stage's failure on each search, with the fused order and a notice, like a server down."""
    from kb.rerankers.resilience import Breaker, Broken, Retrying

    if settings.kind == "none":
        return None
    inner: Reranker
    if settings.kind == "local":
        from kb.errors import KbError
        from kb.rerankers.cross_encoder import CrossEncoderReranker

        try:
            inner = CrossEncoderReranker(settings.model_path or "")
        except KbError as exc:
            inner = Broken(exc)
    else:
        from kb.rerankers.http import HttpReranker

        inner = Retrying(HttpReranker(settings), settings.max_retries, settings.timeout_s)
    return Breaker(inner, board)


def fingerprint(settings: RerankerSettings) -> str:
    """What about the reranker can change a ranking; part of the answer cache's key."""
    s = settings
    return f"{RERANKER}|{s.kind}|{s.base_url}|{s.dialect}|{s.model}|{s.model_path}|{s.candidates}"
