"""The KB home: what all knowledge bases under one KB_HOME share, opened once per process.

That is the answer and query-embedding cache, the metrics store, the breaker board, the
job records and queue, the encoders and the chunker (one model for the home), and the
storage of the knowledge bases (kb/access: the catalogue, the write lock, access to one).
Each adapter opens on first use, once, even when threads race for it. When the home is read-only, the parts that would write degrade
(no cache, a per-process breaker board, no metrics) so that searching still works.

With `state.url` set, the shared parts live on Redis instead (kb/state.py), so that every
instance behind a load balancer sees one cache, one board, one set of metrics and jobs; with
`store.url` too, the storage is shared (access/shared.py), and `kbs/NAME/` holds only this
instance's mirror of each KB's manifest. Which backend serves each part is decided here and
nowhere else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kb.concurrency import drop, lazy
from kb.config import Settings
from kb.config.loading import validate_kb_name
from kb.errors import ConfigError, KbError, StoreError

if TYPE_CHECKING:
    import redis

    from kb.access import KbAccess, Storage
    from kb.cache import Cache
    from kb.embedding import Embedder
    from kb.ingest.chunking import Chunker
    from kb.jobs.queue import JobQueue
    from kb.jobs.store import JobStore
    from kb.metrics.store import Metrics
    from kb.providers.breaker import BreakerBoard
    from kb.rerankers import Reranker
    from kb.tokens import TokenStore


class Home:
    """`long_lived`: a process that serves many requests (kb serve, kb mcp, kb worker). It
    pays a second at start for the fastest warm query encoder, micro-batches concurrent
    queries (serve.micro_batch), keeps query vectors in memory and writes metrics a second
    at a time: nothing on a search's path writes to disk or Redis. A one-shot CLI command
    starts the NumPy encoder in milliseconds and writes through at once."""

    def __init__(self, settings: Settings, long_lived: bool = False) -> None:
        self.settings = settings
        self.path = settings.home
        self.long_lived = long_lived
        self.listeners: list[Callable[[Any], None]] = []  # told of every metrics event (a server's /metrics)

    @property
    def writable(self) -> bool:
        existing = self.path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        return os.access(existing, os.W_OK)

    # -- shared adapters ----------------------------------------------------------------
    @lazy
    def state(self) -> redis.Redis | None:
        """The Redis client of `state.url`, or None for the embedded default."""
        from kb.state import connect

        return connect(self.settings.state.url) if self.settings.state.url else None

    def state_client(self) -> redis.Redis:
        """The Redis client, for the parts that exist only with shared state."""
        client = self.state
        if client is None:
            raise ConfigError("this needs shared state: set state.url (KB_STATE_URL)")
        return client

    @lazy
    def cache(self) -> Cache:
        from kb.cache import NullCache, open_cache

        if self.state is not None:
            from kb.cache import RedisCache

            return RedisCache(self.state)
        return open_cache(self.path / "cache", self.settings.cache_size_mb) if self.writable else NullCache()

    @lazy
    def metrics(self) -> Metrics | None:
        """None when there is nowhere to keep metrics (a read-only home without them)."""
        from kb.metrics.store import MetricsStore

        if self.state is not None:
            from kb.metrics.store import RedisMetricsStore

            return self._buffered(RedisMetricsStore(self.state))
        path = self.path / "metrics.db"
        if self.writable:
            return self._buffered(MetricsStore(path))
        return MetricsStore(path, readonly=True) if path.exists() else None

    def _buffered(self, store: Metrics) -> Metrics:
        if not self.long_lived:
            return store
        from kb.metrics.buffer import BufferedMetrics

        return BufferedMetrics(store)

    @lazy
    def breakers(self) -> BreakerBoard:
        from kb.providers.breaker import MemoryBreakerBoard, SqliteBreakerBoard

        b = self.settings.breaker
        if self.state is not None:
            from kb.providers.breaker import RedisBreakerBoard

            return RedisBreakerBoard(self.state, b.failure_threshold, b.cooldown_s)
        if self.writable:
            return SqliteBreakerBoard(self.path / "breakers.db", b.failure_threshold, b.cooldown_s)
        return MemoryBreakerBoard(b.failure_threshold, b.cooldown_s)

    @lazy
    def reranker(self) -> Reranker | None:
        """The configured reranker with its retries, on the home's breaker board; None when
        there is none (kb.rerankers)."""
        from kb.rerankers import build_reranker

        return build_reranker(self.settings.reranker, self.breakers)

    @lazy
    def jobs(self) -> JobStore:
        """The background jobs' records."""
        from kb.jobs.store import SqliteJobStore

        if self.state is not None:
            from kb.jobs.redis_store import RedisJobStore

            return RedisJobStore(self.state)
        return SqliteJobStore(self.path / "jobs.db")

    @lazy
    def tokens(self) -> TokenStore:
        """The access tokens of `kb serve` (kb/tokens.py)."""
        from kb.tokens import SqliteTokenStore

        if self.state is not None:
            from kb.tokens import RedisTokenStore

            return RedisTokenStore(self.state)
        return SqliteTokenStore(self.path / "tokens.db")

    @lazy
    def queue(self) -> JobQueue:
        """The queue that carries jobs to workers (huey)."""
        from kb.jobs.queue import JobQueue

        return JobQueue(self.settings)

    @lazy
    def model_id(self) -> str:
        from kb.embedding import model_id

        return model_id(self.settings)

    @lazy
    def embedder(self) -> Embedder:
        """The ingest encoder (see `embedding.ingest_runtime`), shared by the jobs of every KB."""
        from kb.embedding import open_embedder

        return open_embedder(self.settings, breakers=self.breakers)

    @lazy
    def query_embedder(self) -> Embedder:
        """The query encoder behind the query-embedding cache. A one-shot command takes the
        one that starts fastest (NumPy, no torch) and the home's cache, so a repeated query
        skips the model in the next process too; a long-lived process the ingest runtime
        (OpenVINO where installed: 3-4x faster per query once compiled, micro-batched) and a
        cache in its memory."""
        from kb.embedding import open_embedder
        from kb.embedding.cached import CachedEmbedder

        if not self.long_lived:
            return CachedEmbedder(open_embedder(self.settings, for_queries=True, breakers=self.breakers), self.cache)
        from kb.cache import MemoryCache

        encoder = open_embedder(self.settings, for_queries=True, warm=True, breakers=self.breakers)
        if self.settings.serve.micro_batch:
            from kb.embedding.batching import MicroBatchingEmbedder

            encoder = MicroBatchingEmbedder(encoder)
        return CachedEmbedder(encoder, MemoryCache())

    @lazy
    def chunker(self) -> Chunker:
        from kb.embedding import model_dir
        from kb.embedding.tokens import WordPieces
        from kb.ingest.chunking import Chunker

        pieces = WordPieces(model_dir(self.settings))
        return Chunker(pieces.count, pieces.split, self.settings.chunk_tokens, self.settings.chunk_overlap)

    def record(self, event: Any) -> None:
        """Appends a metrics event; never fails the operation it measures."""
        for listener in self.listeners:
            listener(event)
        store = self.metrics
        if store is None or store.readonly:
            return
        with contextlib.suppress(StoreError):  # a full disk, a file turned read-only: the answer still goes out
            store.record(event)

    def stats(self, kb: str | None, since: str | None = None) -> dict[str, Any]:
        """The `kb stats` figures of one knowledge base, or (kb=None) of every one."""
        from kb.metrics.stats import compute, parse_since

        start = parse_since(since)
        store = self.metrics
        low = self.settings.low_match
        if store is None:
            return compute([], [], self.breakers.states(), [] if start else None, low)
        baseline = store.top1_before(kb, start) if start else None
        return compute(store.events(kb, start), store.attempts(kb, start), self.breakers.states(), baseline, low)

    def stats_series(self, kb: str | None, since: str | None, bucket: str) -> dict[str, Any]:
        """The `kb stats --series` buckets of one knowledge base, or (kb=None) of every one."""
        from kb.metrics.series import series

        return series(self.metrics, kb, since, bucket, self.settings.low_match)

    # -- where the knowledge bases live ----------------------------------------------------
    @lazy
    def storage(self) -> Storage:
        """Local folders, or a Chroma server with the manifests on Redis (store.url): chosen
        here, once; everything above works through the `Storage` and `KbAccess` it opens."""
        if self.settings.store.url:
            from kb.access.shared import SharedStorage

            return SharedStorage(self.settings, self.state_client())
        from kb.access.local import LocalStorage

        return LocalStorage(self.settings)

    def settings_for(self, name: str) -> Settings:
        return replace(self.settings, kb=validate_kb_name(name))

    def open(self, name: str) -> KbAccess:
        """Access to the knowledge base `name` (creating nothing)."""
        return self.storage.open(self.settings_for(name), lambda: self.model_id)

    def names(self) -> list[str]:
        return self.storage.names()

    def exists(self, name: str) -> bool:
        return self.storage.exists(name)

    def require(self, name: str) -> None:
        self.storage.require(name)

    def problems(self) -> dict[str, str]:
        """What is wrong with the shared backends, by part (readiness, kb doctor): empty
        when all answer, or when there are none."""
        problems: dict[str, str] = {}
        if self.state is not None:
            from kb.state import translated

            try:
                with translated(self.state, "checking it"):
                    self.state.ping()
            except KbError as exc:
                problems["state"] = str(exc)
        problems.update(self.storage.problems())
        return problems

    def close(self) -> None:
        for name in ("cache", "metrics", "breakers", "jobs", "tokens", "queue", "state"):
            adapter = drop(self, name)
            if adapter is not None:
                adapter.close()
