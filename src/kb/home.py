"""The KB home: what all knowledge bases under one KB_HOME share, opened once per process.

That is the answer and query-embedding cache, the metrics store, the breaker board, the
job records and queue, the encoders and the chunker (one model for the home), and the
catalogue of knowledge bases (`kbs/NAME/`). Each adapter opens on first use, once, even
when threads race for it. When the home is read-only, the parts that would write degrade
(no cache, a per-process breaker board, no metrics) so that searching still works.

With `state.url` set, the shared parts live on Redis instead (kb/state.py), so that every
instance behind a load balancer sees one cache, one board, one set of metrics and jobs; with
`store.url` too, the catalogue is Redis's as well, and `kbs/NAME/` holds only this
instance's mirror of each KB's manifest (ingest/shared_manifest.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kb.concurrency import drop, lazy
from kb.config import Settings
from kb.config.loading import validate_kb_name
from kb.errors import ConfigError, KbError, KbNotFound, StoreError

if TYPE_CHECKING:
    import redis

    from kb.cache import Cache
    from kb.embedding import Embedder
    from kb.ingest.chunking import Chunker
    from kb.jobs.queue import JobQueue
    from kb.jobs.store import JobStore
    from kb.locking import Held
    from kb.metrics.store import Metrics
    from kb.providers.breaker import BreakerBoard

MANIFEST = "manifest.db"


class Home:
    def __init__(self, settings: Settings, batch_queries: bool = False) -> None:
        self.settings = settings
        self.path = settings.home
        self.batch_queries = batch_queries  # a server encodes concurrent queries together

    @property
    def writable(self) -> bool:
        existing = self.path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        return os.access(existing, os.W_OK)

    # -- shared adapters ----------------------------------------------------------------
    @property
    def shared_store(self) -> bool:
        """Whether KBs live on a Chroma server, with their manifests on Redis."""
        return bool(self.settings.store.url)

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

            return RedisMetricsStore(self.state)
        path = self.path / "metrics.db"
        if self.writable:
            return MetricsStore(path)
        return MetricsStore(path, readonly=True) if path.exists() else None

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
    def jobs(self) -> JobStore:
        """The background jobs' records."""
        from kb.jobs.store import SqliteJobStore

        if self.state is not None:
            from kb.jobs.redis_store import RedisJobStore

            return RedisJobStore(self.state)
        return SqliteJobStore(self.path / "jobs.db")

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

        return open_embedder(self.settings)

    @lazy
    def query_embedder(self) -> Embedder:
        """The query encoder (NumPy, no torch), behind the query-embedding cache."""
        from kb.embedding import open_embedder
        from kb.embedding.cached import CachedEmbedder

        encoder = open_embedder(self.settings, for_queries=True)
        if self.batch_queries:
            from kb.embedding.batching import MicroBatchingEmbedder

            encoder = MicroBatchingEmbedder(encoder)
        return CachedEmbedder(encoder, self.cache)

    @lazy
    def chunker(self) -> Chunker:
        from kb.embedding import model_dir
        from kb.embedding.tokens import WordPieces
        from kb.ingest.chunking import Chunker

        pieces = WordPieces(model_dir(self.settings))
        return Chunker(pieces.count, pieces.split, self.settings.chunk_tokens, self.settings.chunk_overlap)

    def record(self, event: Any) -> None:
        """Appends a metrics event; never fails the operation it measures."""
        store = self.metrics
        if store is None or store.readonly:
            return
        with contextlib.suppress(StoreError):  # a full disk, a file turned read-only: the answer still goes out
            store.record(event)

    # -- the catalogue ------------------------------------------------------------------
    def settings_for(self, name: str) -> Settings:
        return replace(self.settings, kb=validate_kb_name(name))

    def names(self) -> list[str]:
        if self.shared_store:
            from kb.ingest import shared_manifest

            return shared_manifest.names(self.state_client())
        kbs = self.settings.kbs_dir
        if not kbs.is_dir():
            return []
        return sorted(d.name for d in kbs.iterdir() if (d / MANIFEST).is_file() and not d.name.startswith("."))

    def exists(self, name: str) -> bool:
        if self.shared_store:
            from kb.ingest import shared_manifest

            return shared_manifest.exists(self.state_client(), name)
        return (self.settings.kbs_dir / name / MANIFEST).is_file()

    def require(self, name: str) -> None:
        if self.exists(name):
            return
        existing = self.names()
        known = f"existing: {', '.join(existing)}" if existing else "there are none yet"
        raise KbNotFound(
            f"knowledge base {name!r} does not exist in {self.path} ({known}); "
            f"create it with `kb --kb {name} ingest PATH`, or pick one with --kb"
        )

    def delete(self, name: str, on_wait: Any = lambda message: None) -> None:
        """Removes a knowledge base and everything in it, under its write lock."""
        self.require(name)
        settings = self.settings_for(name)
        trash = settings.kbs_dir / f".deleted-{name}-{time.time_ns()}"
        if self.shared_store:
            self._delete_shared(settings, on_wait)
            if settings.kb_dir.exists():  # this instance's mirror
                settings.kb_dir.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
            return
        with self.write_lock(name, on_wait):
            try:
                settings.kb_dir.rename(trash)  # one step: a reader sees the KB whole or gone
            except OSError as exc:
                raise StoreError(f"cannot delete {settings.kb_dir} ({exc.strerror})") from exc
        shutil.rmtree(trash, ignore_errors=True)

    def _delete_shared(self, settings: Settings, on_wait: Any) -> None:
        """The KB leaves the catalogue first, so no instance starts on it; then its vectors go."""
        from kb.ingest.shared_manifest import drop_shared
        from kb.store.chroma import delete_remote

        assert settings.store.url is not None
        with self.write_lock(settings.kb, on_wait):
            drop_shared(self.state_client(), settings.kb)
            delete_remote(settings.store.url, settings.kb)

    def shared_problems(self) -> dict[str, str]:
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
        if self.settings.store.url:
            from kb.store.chroma import ping_server

            try:
                ping_server(self.settings.store.url)
            except KbError as exc:
                problems["store"] = str(exc)
        return problems

    def write_lock(
        self, name: str, on_wait: Any = lambda message: None, timeout_s: float | None = None
    ) -> AbstractContextManager[Held]:
        """One writer per KB: across processes under this home, or across instances with a
        shared store (a lease on Redis)."""
        from kb.locking import shared_write_lock, write_lock

        timeout = self.settings.lock_timeout_s if timeout_s is None else timeout_s
        if self.shared_store:
            return shared_write_lock(self.state_client(), name, timeout, self.settings.state.lock_lease_s, on_wait)
        return write_lock(self.settings_for(name).kb_dir, name, timeout, on_wait)

    def close(self) -> None:
        for name in ("cache", "metrics", "breakers", "jobs", "queue", "state"):
            adapter = drop(self, name)
            if adapter is not None:
                adapter.close()
