"""A reranking server over HTTP, in one of two dialects.

- `cohere`: `POST {base_url}/rerank {"model", "query", "documents": [...], "top_n"}` answered
  `{"results": [{"index", "relevance_score"}, ...]}` — Cohere's API, and what Jina, vLLM,
  llama.cpp's server, Infinity, OpenVINO Model Server and LiteLLM's proxy serve.
- `tei`: Text Embeddings Inference's `POST {base_url}/rerank {"query", "texts", "truncate"}`
  answered `[{"index", "score"}, ...]`.

httpx's errors and the server's statuses become kb's ProviderErrors here, with the same
retryable kinds as the provider chain's (timeouts, connection errors, 5xx, 429); an answer
that does not fit the dialect is a BadResponse.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from kb.config.settings import RERANKER, RerankerSettings
from kb.errors import BadResponse, ProviderRejected, ProviderTimeout, ProviderUnavailable, RateLimited


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class HttpReranker:
    def __init__(self, settings: RerankerSettings) -> None:
        self.name = RERANKER
        self.settings = settings
        self.url = (settings.base_url or "").rstrip("/") + "/rerank"
        self._client: Any = None
        self._lock = threading.Lock()

    def _http(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx

                headers = {"authorization": f"Bearer {key}"} if (key := self.settings.api_key()) else {}
                self._client = httpx.Client(timeout=self.settings.timeout_s, headers=headers)
            return self._client

    def body(self, query: str, documents: list[str], top_n: int) -> dict[str, Any]:
        if self.settings.dialect == "tei":
            return {"query": query, "texts": documents, "truncate": True}
        body: dict[str, Any] = {"query": query, "documents": documents, "top_n": top_n}
        if self.settings.model:
            body["model"] = self.settings.model
        return body

    def rerank(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        import httpx

        try:
            response = self._http().post(self.url, json=self.body(query, documents, top_n))
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{self.name}: no answer from {self.url} within {self.settings.timeout_s:g}s",
                                  provider=self.name) from exc  # fmt: skip
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"{self.name}: cannot connect to {self.url} ({exc})", provider=self.name) from exc
        status = response.status_code
        if status == 429:
            raise RateLimited(f"{self.name}: rate limited (429)", provider=self.name,
                              retry_after=_retry_after(response.headers.get("retry-after")))  # fmt: skip
        if status >= 500 or status in (408, 409):
            raise ProviderUnavailable(f"{self.name}: server error {status} from {self.url}", provider=self.name)
        if status >= 400:
            hint = f"check {self.settings.api_key_env or 'its API key'}" if status in (401, 403) else (
                "check [reranker] base_url, dialect and model")  # fmt: skip
            raise ProviderRejected(f"{self.name}: {self.url} refused the request with {status}; {hint}",
                                   provider=self.name)  # fmt: skip
        try:
            return _ranking(response.json(), self.settings.dialect, len(documents), top_n)
        except (ValueError, KeyError, TypeError) as exc:
            raise BadResponse(f"{self.name}: {self.url} answered what the {self.settings.dialect} dialect does not "
                              f"(expected {_SHAPE[self.settings.dialect]})", provider=self.name) from exc  # fmt: skip


_SHAPE = {"cohere": '{"results": [{"index", "relevance_score"}]}', "tei": '[{"index", "score"}]'}


def _ranking(data: Any, dialect: str, count: int, top_n: int) -> list[tuple[int, float]]:
    """(index, score) best first from a dialect's answer; ValueError if it does not fit."""
    rows, score_key = (data, "score") if dialect == "tei" else (data["results"], "relevance_score")
    if not isinstance(rows, list):
        raise ValueError("not a list")
    out: dict[int, float] = {}
    for row in rows:
        index, score = row["index"], row[score_key]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError(f"index {index!r} out of range")
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise ValueError(f"score {score!r} is not a number")
        out.setdefault(index, float(score))
    return sorted(out.items(), key=lambda pair: -pair[1])[:top_n]
