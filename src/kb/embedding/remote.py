"""Embeddings from a service that speaks OpenAI's `POST /v1/embeddings`: Text Embeddings
Inference, vLLM, Ollama, a hosted API, or another `kb serve`.

    OpenAIEmbedder.embed(texts)
      └── batches of `batch_size`, up to `max_concurrency` in flight, each:
            guarded(breaker)            the provider breaker, one per service (kb stats)
              retried(...)         backoff, Retry-After, retryable errors only
                _request(batch)         one HTTP call; every failure becomes a ProviderError

The resilience rules are the provider chain's (providers/breaker.py, retrying.py), applied
to one batch. Every message names the service, because an ingest that stops on it must say
which machine to look at. Whatever the service answers is checked before kb stores it:
one vector per text, all of one dimension, finite and non-zero; anything else is a
`BadResponse`, never a vector in the index.
"""

from __future__ import annotations

import base64
import binascii
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from kb.errors import BadResponse, ProviderRejected, ProviderTimeout, ProviderUnavailable, RateLimited
from kb.providers.breaker import BreakerBoard, guarded
from kb.providers.retrying import BACKOFF_MAX_S, retried

if TYPE_CHECKING:
    import httpx
    import numpy as np

    from kb.config import EmbeddingSettings

KIND = "openai"


def remote_model_id(model: str) -> str:
    """What the manifest records for vectors from a service: the kind and the model name
    (not the URL: two servers of one model give the same vectors)."""
    return f"{KIND}:{model}"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the backoff schedule applies instead


def _server_message(response: httpx.Response, key: str | None) -> str:
    """The service's own reason for a refusal, short (OpenAI's shape, or the raw text),
    without the API key: some services quote the key they refused."""
    try:
        payload = response.json()
        error = payload.get("error") if isinstance(payload, dict) else None
        text = error.get("message") if isinstance(error, dict) else (error or payload.get("message"))
    except (ValueError, AttributeError):
        text = response.text
    text = " ".join(str(text or "").split())
    if key:
        text = text.replace(key, "****")
    return f": {text[:200]}" if text else ""


def parse_embeddings(payload: Any, count: int) -> np.ndarray:
    """The vectors of an OpenAI embeddings response (float lists or base64 of little-endian
    float32), in input order, L2-normalised; ValueError naming what is wrong otherwise."""
    import numpy as np

    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ValueError("no data list")
    if len(data) != count:
        raise ValueError(f"{len(data)} embeddings for {count} inputs")
    rows: list[np.ndarray | None] = [None] * count
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError("an item of data is not an object")
        index = item.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count or rows[index] is not None:
            raise ValueError(f"bad or repeated index {index!r}")
        rows[index] = _vector(item.get("embedding"))
    vectors = [r for r in rows if r is not None]  # all of them: count items, no index twice
    if any(len(r) != len(vectors[0]) for r in vectors):
        raise ValueError("embeddings of different dimensions")
    matrix = np.vstack(vectors).astype(np.float32, copy=False) if count else np.zeros((0, 0), np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError("non-finite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if count and not (norms > 0).all():
        raise ValueError("an all-zero embedding")
    return matrix / norms if count else matrix


def _vector(value: Any) -> np.ndarray:
    import numpy as np

    if isinstance(value, str):  # base64: the official clients' default
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("an embedding is not valid base64") from None
        if not raw or len(raw) % 4:
            raise ValueError("a base64 embedding is not a whole number of float32 values")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not isinstance(value, list) or not value:
        raise ValueError("an embedding is neither a list of numbers nor base64")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise ValueError("an embedding holds something other than numbers")
    return np.asarray(value, dtype=np.float32)


class OpenAIEmbedder:
    """The Embedder for kind = "openai". `prefix` goes before every text (query_prefix or
    document_prefix, for models trained with one). Thread-safe: the HTTP client and the
    pool are shared by every caller."""

    def __init__(self, settings: EmbeddingSettings, prefix: str, board: BreakerBoard) -> None:
        assert settings.base_url and settings.model  # config/loading.py requires both
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.model = settings.model
        self.model_id = remote_model_id(settings.model)
        self.name = f"embeddings {self.base_url}"  # the breaker's key, in kb stats
        self.prefix = prefix
        self.board = board
        self._dimension: int | None = None
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- the Embedder protocol -----------------------------------------------------------------
    @property
    def dimension(self) -> int:
        """The service's dimension, learned from its first answer (one small request if none yet)."""
        if self._dimension is None:
            self.embed(["dimension"])
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        size = self.settings.batch_size
        batches = [[self.prefix + t for t in texts[i : i + size]] for i in range(0, len(texts), size)]
        if len(batches) == 1:  # a query: no thread hand-off
            parts = [self._batch(batches[0])]
        else:
            parts = self._concurrently(batches)
        if len({p.shape[1] for p in parts}) > 1:
            raise BadResponse(f"{self._where()}: answered batches of different dimensions", provider=self.name)
        matrix = np.vstack(parts)
        # The latest answer's: whether that dimension may join or query a knowledge base is
        # for the KB to say (it records its own, embedding/identity.py), not for a retry here.
        self._dimension = int(matrix.shape[1])
        return matrix

    # -- batches ------------------------------------------------------------------------------
    def _concurrently(self, batches: list[list[str]]) -> list[np.ndarray]:
        """Every batch, at most max_concurrency at once; the first failure stops the rest
        (those not yet sent are cancelled) and is raised."""
        pool = self._executor()
        futures: list[Future] = [pool.submit(self._batch, b) for b in batches]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in pending:
                future.cancel()
            raise failed.exception()  # type: ignore[misc]
        return [f.result() for f in futures]

    def _batch(self, texts: list[str]) -> np.ndarray:
        s = self.settings
        # The deadline covers every try: each may take timeout_s, and the waits between them.
        deadline = s.timeout_s * (s.max_retries + 1) + BACKOFF_MAX_S * s.max_retries
        return guarded(self.board, self.name, lambda: retried(lambda: self._request(texts), s.max_retries, deadline))

    def _request(self, texts: list[str]) -> np.ndarray:
        """One POST /embeddings; every way it can fail becomes a kb ProviderError naming the service."""
        import httpx

        body = {"input": texts, "model": self.model, "encoding_format": self.settings.encoding_format}
        try:
            response = self._http().post(f"{self.base_url}/embeddings", json=body)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(
                f"{self._where()}: no answer within {self.settings.timeout_s:g}s", provider=self.name
            ) from exc
        except httpx.HTTPError as exc:  # refused, reset, DNS: nothing answered
            raise ProviderUnavailable(f"{self._where()}: cannot connect ({exc})", provider=self.name) from exc
        status = response.status_code
        if status == 429:
            raise RateLimited(f"{self._where()}: rate limited (429)", provider=self.name,
                              retry_after=_retry_after(response.headers.get("retry-after")))  # fmt: skip
        if status >= 500 or status in (408, 409):
            raise ProviderUnavailable(
                f"{self._where()}: server error {status}{_server_message(response, self.settings.api_key())}",
                provider=self.name,
            )
        if status >= 400:
            hint = (
                f"check the key in {self.settings.api_key_env or 'api_key_env (none is set)'}"
                if status in (401, 403)
                else "check [embedding] model and base_url"
            )
            raise ProviderRejected(
                f"{self._where()}: refused with {status}{_server_message(response, self.settings.api_key())}; {hint}",
                provider=self.name,
            )
        try:
            return parse_embeddings(response.json(), len(texts))
        except ValueError as exc:  # json's decode error is a ValueError too
            raise BadResponse(f"{self._where()}: answered garbage ({exc})", provider=self.name) from exc

    def _where(self) -> str:
        return f"embedding service {self.base_url} (model {self.model})"

    # -- shared resources ---------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                key = self.settings.api_key()
                limit = self.settings.max_concurrency
                self._client = httpx.Client(
                    timeout=self.settings.timeout_s,
                    headers={"Authorization": f"Bearer {key}"} if key else {},
                    limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                )
            return self._client

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.max_concurrency, thread_name_prefix="kb-embed")
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            if self._client is not None:
                self._client.close()
            self._pool = self._client = None
