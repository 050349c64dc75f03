"""KnowledgeBase: the one entry point front-ends use — ingest, search, ask, stats.

Adapters are opened lazily, so each operation pays only for what it touches: a re-ingest
of unchanged files never loads the model, and a cached answer never opens Chroma.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from kb.config import Settings
from kb.documents import Hit
from kb.errors import AllProvidersFailed, ConfigError, KbError, LockTimeout
from kb.ingest.manifest import Manifest


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class KnowledgeBase:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.on_wait = lambda message: None  # front-ends show "waiting for the lock" here
        self._writing_now = False

    # -- adapters, opened on first use ---------------------------------------------
    @cached_property
    def manifest(self) -> Manifest:
        return Manifest(self.settings.kb_dir / "manifest.db")

    @cached_property
    def store(self):
        from kb.store import guard
        from kb.store.chroma import COLLECTION_PREFIX, ChromaStore

        guard.before_read(self.settings.kb_dir, COLLECTION_PREFIX + self.settings.kb, self._lock_path)
        return ChromaStore(self.settings.kb_dir / "chroma", self.settings.kb)

    @cached_property
    def embedder(self):
        from kb.embedding import open_embedder

        return open_embedder(self.settings)

    @cached_property
    def query_embedder(self):
        from kb.embedding import open_embedder
        from kb.embedding.cached import CachedEmbedder

        return CachedEmbedder(open_embedder(self.settings, for_queries=True), self.cache)

    @cached_property
    def cache(self):
        from kb.cache import DiskCache

        return DiskCache(self.settings.home / "cache", self.settings.cache_size_mb)

    @cached_property
    def metrics(self):
        from kb.metrics.store import MetricsStore

        return MetricsStore(self.settings.home / "metrics.db")

    @cached_property
    def breakers(self):
        from kb.providers.breaker import BreakerBoard

        b = self.settings.breaker
        return BreakerBoard(self.settings.home / "breakers.db", b.failure_threshold, b.cooldown_s)

    @cached_property
    def model_id(self) -> str:
        from kb.embedding import model_id

        return model_id(self.settings)

    @cached_property
    def chunker(self):
        from kb.embedding import model_dir
        from kb.embedding.tokens import WordPieces
        from kb.ingest.chunking import Chunker

        pieces = WordPieces(model_dir(self.settings))
        return Chunker(pieces.count, pieces.split, self.settings.chunk_tokens, self.settings.chunk_overlap)

    # -- guards -----------------------------------------------------------------------
    def _check_model(self) -> None:
        built_with = self.manifest.get_meta("model")
        if built_with and built_with != self.model_id:
            raise ConfigError(
                f"knowledge base {self.settings.kb!r} was built with the model {built_with}, but the configured model is "
                f"{self.model_id}; set KB_MODEL back, or use another knowledge base with --kb NAME"
            )

    def _require_content(self) -> None:
        if self.manifest.totals()[0] == 0:
            raise KbError(f"knowledge base {self.settings.kb!r} is empty; add documents with `kb ingest PATH`")

    @property
    def _lock_path(self) -> Path:
        return self.settings.kb_dir / "write.lock"

    @contextmanager
    def _write_lock(self):
        from filelock import FileLock, Timeout

        self.settings.kb_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.on_wait(
                f"another kb process is writing to {self.settings.kb!r}; waiting up to {self.settings.lock_timeout_s:g}s"
            )
            try:
                lock.acquire(timeout=self.settings.lock_timeout_s)
            except Timeout as exc:
                raise LockTimeout(
                    f"knowledge base {self.settings.kb!r} is still locked by another kb process after "
                    f"{self.settings.lock_timeout_s:g}s; try again later or raise lock_timeout_s"
                ) from exc
        try:
            yield
        finally:
            lock.release()

    # -- operations -------------------------------------------------------------------
    def ingest(self, paths: list[Path], include=None, exclude=None, hidden: bool = False, progress=None):
        from kb.metrics.store import Event

        started = time.perf_counter()
        with self._write_lock():
            report = self.ingest_locked(paths, include, exclude, hidden, progress)
        self.metrics.record(
            Event("ingest", self.settings.kb, _ms(started), error="failed files" if report.failed else None)
        )
        return report

    def ingest_locked(self, paths: list[Path], include=None, exclude=None, hidden: bool = False, progress=None):
        """`ingest` for a caller that already holds the write lock (kb doctor --repair)."""
        from kb.ingest.pipeline import IngestPipeline

        self._check_model()
        if not self.manifest.get_meta("model"):
            self.manifest.set_meta("model", self.model_id)
        with self._writing() as interrupted:
            pipeline = IngestPipeline(
                self.manifest,
                lambda: self.store,
                lambda texts: self.embedder.embed(texts),
                lambda: self.chunker,
                self.model_id,
                progress,
                self.settings.ingest_batch,
                recovering=interrupted,
            )
            return pipeline.run(paths, include, exclude, hidden)

    @contextmanager
    def _writing(self):
        """Marks the index as being written for the duration (see store/guard.py); the
        caller holds the write lock. The mark stays if the write does not return. Yields
        whether the previous write was interrupted."""
        from kb.store import guard
        from kb.store.chroma import COLLECTION_PREFIX

        if self._writing_now:  # nested: kb doctor --repair re-ingesting inside its own write
            yield True  # ...after damage: treat the store as possibly ahead of the manifest
            return
        interrupted = guard.begin_write(self.settings.kb_dir, COLLECTION_PREFIX + self.settings.kb)
        self._writing_now = True
        try:
            yield interrupted
        finally:
            self._writing_now = False
        guard.end_write(self.settings.kb_dir)  # not reached when the body raised

    def doctor(self, repair: bool = False):
        from kb import doctor

        report = doctor.diagnose(self)
        return doctor.repair(self, report) if repair and report.problems else report

    def close(self) -> None:
        """Drops the open manifest and store, so the next use opens them afresh."""
        for name in ("manifest", "store"):
            adapter = self.__dict__.pop(name, None)
            if adapter is not None:
                adapter.close()

    def search(self, queries: list[str], k: int | None = None) -> list[list[Hit]]:
        from kb.answering.question import clean_question

        cleaned = [clean_question(q, self.settings.max_question_chars) for q in queries]
        self._check_model()
        self._require_content()
        return [hits for hits, _ in (self._retrieve(q, k or self.settings.top_k, record="search") for q in cleaned)]

    def _retrieve(self, query: str, k: int, record: str | None) -> tuple[list[Hit], float]:
        from kb.metrics.store import Event

        started = time.perf_counter()
        hits = self.store.query(self.query_embedder.embed([query]), k)[0]
        elapsed = _ms(started)
        if record:
            self.metrics.record(
                Event(record, self.settings.kb, elapsed, retrieve_ms=elapsed, top1=hits[0].score if hits else None)
            )
        return hits, elapsed

    def ask(
        self, question: str, top_k: int | None = None, provider: str | None = None, use_cache: bool = True, stream=None
    ):
        from kb.answering.answer import Answer
        from kb.answering.citations import verify
        from kb.answering.prompt import PROMPT_VERSION, Prompt
        from kb.answering.question import cache_form, clean_question
        from kb.cache import answer_key
        from kb.metrics.store import Event
        from kb.providers.base import CompletionRequest
        from kb.providers.chain import build_chain, chain_fingerprint

        started = time.perf_counter()
        q = clean_question(question, self.settings.max_question_chars)
        self._check_model()
        k = top_k or self.settings.top_k
        key = answer_key(
            q=cache_form(q),
            kb=self.settings.kb,
            version=self.manifest.content_key(),
            model=self.model_id,
            chain=chain_fingerprint(self.settings, provider),
            k=k,
            prompt=PROMPT_VERSION,
        )
        if use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                hit.question, hit.cached, hit.attempts = q, True, []
                hit.latency_ms = {"retrieve": 0.0, "generate": 0.0, "total": _ms(started)}
                self.metrics.record(
                    Event(
                        "ask",
                        self.settings.kb,
                        hit.latency_ms["total"],
                        provider=hit.provider,
                        model=hit.model,
                        cached=True,
                        top1=hit.top1,
                    )
                )
                return hit
        self._require_content()
        chain = build_chain(self.settings, self.breakers, lambda texts: self.query_embedder.embed(texts), only=provider)
        hits, retrieve_ms = self._retrieve(q, k, record=None)
        request = CompletionRequest(question=q, passages=hits, prompt=Prompt(q, hits), stream=stream)
        generating = time.perf_counter()
        top1 = hits[0].score if hits else None
        try:
            completion = chain.complete(request)
        except AllProvidersFailed as exc:
            self.metrics.record(
                Event(
                    "ask",
                    self.settings.kb,
                    _ms(started),
                    retrieve_ms=retrieve_ms,
                    generate_ms=_ms(generating),
                    error=exc.kind,
                    top1=top1,
                    attempts=exc.attempts,
                )
            )
            raise
        generate_ms = _ms(generating)
        text, citations, dropped = verify(completion.text, hits, completion.passages_given)
        answer = Answer(
            q,
            text,
            citations,
            completion.provider,
            completion.model,
            completion.usage,
            {"retrieve": retrieve_ms, "generate": generate_ms, "total": _ms(started)},
            completion.attempts,
            dropped_citations=dropped,
            top1=top1,
        )
        # A degraded answer (an earlier link failed) is not cached: once the preferred
        # provider is back, the same question should reach it.
        if use_cache and all(a.outcome == "ok" for a in completion.attempts):
            self.cache.set(key, answer)
        u = completion.usage
        self.metrics.record(
            Event(
                "ask",
                self.settings.kb,
                answer.latency_ms["total"],
                retrieve_ms,
                generate_ms,
                completion.provider,
                completion.model,
                u.input_tokens,
                u.output_tokens,
                u.cost_usd,
                top1=top1,
                attempts=completion.attempts,
            )
        )
        return answer

    def documents(self) -> list[dict]:
        return [
            {
                "source": r.source,
                "chunks": len(r.chunk_ids),
                "bytes": r.size,
                "ingested_at": datetime.fromtimestamp(r.ingested_at, UTC).isoformat(timespec="seconds"),
            }
            for r in self.manifest.all()
        ]

    def remove(self, path: Path) -> tuple[int, int]:
        """Remove a document, or every document under a folder: (documents, chunks)."""
        target = os.path.abspath(path.expanduser())
        with self._write_lock():
            sources = [target] if self.manifest.get(target) else self.manifest.sources_under(target)
            if not sources:
                raise KbError(f"{target} is not in knowledge base {self.settings.kb!r}; `kb list` shows what is")
            chunks = 0
            with self._writing():
                for source in sources:
                    record = self.manifest.get(source)
                    ids = record.chunk_ids if record else []
                    self.store.delete(ids)
                    self.manifest.delete(source)
                    self.manifest.bump_version()
                    chunks += len(ids)
        return len(sources), chunks

    def info(self) -> dict:
        docs, chunks, _ = self.manifest.totals()
        size = sum(f.stat().st_size for f in self.settings.kb_dir.rglob("*") if f.is_file())
        return {
            "home": str(self.settings.home),
            "kb": self.settings.kb,
            "model": self.manifest.get_meta("model") or self.model_id,
            "documents": docs,
            "chunks": chunks,
            "bytes": size,
        }

    def stats(self, since: str | None = None) -> dict:
        from kb.metrics.stats import compute, parse_since

        start = parse_since(since)
        baseline = self.metrics.top1_before(start) if start else None
        return compute(
            self.metrics.events(start),
            self.metrics.attempts(start),
            self.breakers.states(),
            baseline,
            self.settings.low_match,
        )

    def clear_cache(self) -> int:
        return self.cache.clear()
