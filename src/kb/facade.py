"""KnowledgeBase: the one entry point front-ends use — ingest, search, ask, stats.

Adapters are opened lazily, so each operation pays only for what it touches: a re-ingest
of unchanged files never loads the model, and a cached answer never opens Chroma.

One instance may serve many threads (the HTTP service shares one per KB):
- adapters open once, under a lock (`lazy`); SQLite connections are per thread;
- operations run side by side; `close()` and a rebuild by `kb doctor` wait for them and
  hold new ones back (`Gate`);
- writers take the per-KB write lock, so one writes at a time across threads and processes;
- other processes' writes become visible: the manifest (SQLite) shows them at once, and
  Chroma's local client, which caches the index in memory, is reopened when the manifest's
  content key moved. Before loading an index another writer may have left half-written,
  the guard probes it in a child process.
- read operations never create anything: a KB that does not exist is an error.

Search is hybrid by default: the dense candidates (ids and similarities from Chroma) and the
keyword candidates (FTS5 bm25 over the manifest's `chunks`) are fused by reciprocal rank,
and only the final top-k's texts are read, from the manifest. A KB from before the keyword
index gets it on its first write or hybrid search (see `_ensure_keyword_index`); until then,
and in a read-only home, searches are dense, with a one-line notice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.concurrency import Gate, drop, lazy
from kb.config import Settings
from kb.documents import Hit
from kb.errors import AllProvidersFailed, ConfigError, InputError, KbError, KbNotFound, LockTimeout, StoreError
from kb.home import MANIFEST, Home
from kb.ingest.manifest import Manifest

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.doctor import DoctorReport
    from kb.ingest.pipeline import IngestReport, Progress
    from kb.ingest.planning import IngestPlan
    from kb.ingest.shared_manifest import SharedManifest
    from kb.retrieval.keyword import RareTerms
    from kb.store.chroma import ChromaStore


log = logging.getLogger("kb")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class KnowledgeBase:
    def __init__(self, settings: Settings, home: Home | None = None) -> None:
        self.settings = settings
        self.home = home or Home(settings)
        self._owns_home = home is None
        self.on_wait: Callable[[str], None] = lambda message: None  # "waiting for the lock"
        self.on_notice: Callable[[str], None] = log.warning  # "searching by embeddings alone"
        self._noticed = False
        self._gate = Gate()
        self._writer: threading.Thread | None = None  # the thread of this process holding the write lock
        self._in_write_mark = False
        self._store_key: str | None = None  # the manifest's content key when the store was opened

    @property
    def name(self) -> str:
        return self.settings.kb

    # -- adapters, opened on first use ----------------------------------------------------
    @lazy
    def manifest(self) -> Manifest:
        kb_dir = self.settings.kb_dir
        if self.home.shared_store:
            from kb.ingest.shared_manifest import SharedManifest

            return SharedManifest(kb_dir / MANIFEST, self.home.state_client(), self.name)
        return Manifest(kb_dir / MANIFEST, readonly=kb_dir.exists() and not os.access(kb_dir, os.W_OK))

    @property
    def _shared(self) -> SharedManifest | None:
        """The manifest, when it is shared through Redis (store.url)."""
        from kb.ingest.shared_manifest import SharedManifest

        return self.manifest if self.home.shared_store and isinstance(self.manifest, SharedManifest) else None

    @lazy
    def rare_terms(self) -> RareTerms:
        from kb.retrieval.keyword import RareTerms

        return RareTerms(lambda word, cap: self.manifest.keyword_count(word, cap))

    @lazy
    def store(self) -> ChromaStore:
        from kb.store import guard
        from kb.store.chroma import COLLECTION_PREFIX, ChromaStore

        if self.settings.store.url:  # a server: its client caches nothing, so never stale
            return ChromaStore(self.settings.kb_dir / "chroma", self.name, self.settings.store.url)
        self._store_key = self.manifest.content_key()  # before opening: a write meanwhile means reopen
        guard.before_read(self.settings.kb_dir, COLLECTION_PREFIX + self.name)
        return ChromaStore(self.settings.kb_dir / "chroma", self.name)

    # -- guards -----------------------------------------------------------------------------
    def _check_model(self, manifest: Manifest | None = None) -> None:
        built_with = (manifest or self.manifest).get_meta("model")
        if built_with and built_with != self.home.model_id:
            raise ConfigError(
                f"knowledge base {self.name!r} was built with the model {built_with}, but the configured model is "
                f"{self.home.model_id}; set KB_MODEL back, or use another knowledge base with --kb NAME"
            )

    def _require_content(self) -> None:
        if not self.manifest.has_documents():
            raise KbError(f"knowledge base {self.name!r} is empty; add documents with `kb ingest PATH`")

    def _store_is_stale(self) -> bool:
        """Whether another process committed a write since the store was opened. Not when
        this process is the writer: its client sees its own writes."""
        return "store" in self.__dict__ and self._writer is None and self.manifest.content_key() != self._store_key

    def _refresh_store(self) -> None:
        """Reopens the store if it is stale (see above), or with a shared store, brings this
        instance's mirror of the manifest up to date; called outside the gate."""
        if self.home.shared_store:
            with self._gate.shared():
                shared = self._shared
                if shared is not None and not shared.is_synced():
                    shared.sync(lambda ids: self.store.stored(ids) if ids else [])
            return
        with self._gate.shared():
            stale = self._store_is_stale()
        if stale:
            with self._gate.exclusive():
                if self._store_is_stale():
                    drop(self, "store").close()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        self.home.require(self.name)
        self._refresh_store()
        with self._gate.shared():
            yield

    @contextmanager
    def _writing_op(
        self, lock_timeout_s: float | None = None, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """The write lock, then the gate: a thread waiting for the lock holds no gate, so a
        rebuild never waits for it."""
        with self.home.write_lock(self.name, on_wait or self.on_wait, lock_timeout_s) as held:
            self._refresh_store()  # include what the previous writer (another process) committed
            with self._gate.shared():
                self._writer = threading.current_thread()
                if (shared := self._shared) is not None:
                    shared.fence = held.check  # a lease lost on the way stops the next commit
                try:
                    yield
                finally:
                    if "store" in self.__dict__:
                        self._store_key = self.manifest.content_key()
                    if shared is not None:
                        shared.unfence()
                        with contextlib.suppress(KbError):  # a lost lease: the next read syncs
                            held.check()  # the mirror has every commit only while they were all ours
                            shared.mark_synced()
                    self._writer = None

    @contextmanager
    def _write_mark(self) -> Iterator[bool]:
        """Marks the index as being written for the duration (see store/guard.py); the
        caller holds the write lock. The mark stays if the write does not return. Yields
        whether the previous write was interrupted."""
        from kb.store import guard
        from kb.store.chroma import COLLECTION_PREFIX

        if self._in_write_mark:  # nested: kb doctor --repair re-ingesting inside its own write
            yield True  # ...after damage: treat the store as possibly ahead of the manifest
            return
        shared = self._shared
        if shared is not None:
            interrupted = shared.begin_write()
        else:
            interrupted = guard.begin_write(self.settings.kb_dir, COLLECTION_PREFIX + self.name)
        self._in_write_mark = True
        try:
            yield interrupted
        finally:
            self._in_write_mark = False
        # Not reached when the body raised: the next writer then knows.
        if shared is not None:
            shared.end_write()
        else:
            guard.end_write(self.settings.kb_dir)

    # -- writing --------------------------------------------------------------------------
    def ingest(
        self,
        paths: list[Path],
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        hidden: bool = False,
        prune: bool = False,
        progress: Progress | None = None,
        lock_timeout_s: float | None = None,
        hold: frozenset[str] = frozenset(),
    ) -> IngestReport:
        """Adds and updates the documents under `paths`, and drops documents whose files are
        gone. Filters narrow what is read, never what is kept; with `prune`, documents under
        the given folders that the filters leave out are removed too (listed in the report).
        `lock_timeout_s` overrides how long to wait for another writer (background jobs);
        files in `hold` are left as they are this time (`watch`: still being written)."""
        from kb.metrics.store import Event

        started = time.perf_counter()
        with self._writing_op(lock_timeout_s):
            report = self._ingest_locked(paths, include, exclude, hidden, prune, progress, hold)
        error = "failed files" if report.failed else None
        event = Event("ingest", self.name, _ms(started), model=self.home.model_id, error=error)
        event.chunks = report.chunks_embedded
        self.home.record(event)
        return report

    def watch(
        self,
        paths: list[Path],
        stop: threading.Event,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        hidden: bool = False,
        prune: bool = False,
        settle_s: float | None = None,
    ) -> Iterator[IngestReport]:
        """Keeps the knowledge base in sync with `paths` until `stop` is set: each batch of
        changes, once settled (see kb.ingest.watching), is applied by a full `ingest` of
        `paths` — same filters, write lock and crash safety — and its report yielded. The
        lock is free between batches. The first batch catches up with changes made before
        the watch began (e.g. during a first ingest); reports that changed nothing are not
        yielded. Stopping waits for the batch in progress."""
        from kb.ingest import watching

        roots = [Path(os.path.abspath(p.expanduser())) for p in paths]
        quiet = watching.SETTLE_S if settle_s is None else settle_s
        held: set[str] = set()
        catch_up = True
        for changed in watching.changes(roots, stop):
            pending = {p for p in changed if watching.relevant(p, roots, hidden, self.settings.home)}
            if not (pending or held or catch_up):
                continue
            catch_up = False
            held = watching.settle(pending | held, stop, quiet)
            if stop.is_set():
                return
            try:
                report = self.ingest(roots, include, exclude, hidden, prune, hold=frozenset(held))
            except LockTimeout as exc:  # another writer for long: try again at the next tick
                self.on_wait(f"{exc}; retrying")
                catch_up = True
                continue
            # Failures of files this batch did not touch were reported when they happened.
            report.failed = [f for f in report.failed if f["path"] in pending]
            if report.changed or report.failed:
                yield report

    def plan_ingest(
        self,
        paths: list[Path],
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        hidden: bool = False,
        prune: bool = False,
    ) -> IngestPlan:
        """What `ingest` would add, update, remove (and with `prune`, prune), with the chunks
        and time it would take on this machine. Writes nothing and takes no lock: the
        manifest and the metrics are opened read-only, and a KB that does not exist stays so."""
        from kb.ingest.estimate import estimate_time
        from kb.ingest.planning import plan

        kb_exists = self.home.exists(self.name)
        shared = kb_exists and self.home.shared_store
        if shared:  # this instance's mirror, brought up to date; the shared KB is not written
            self._refresh_store()
            manifest: Manifest | None = self.manifest
        else:
            manifest = Manifest(self.settings.kb_dir / MANIFEST, untouched=True) if kb_exists else None
        try:
            if manifest is not None:
                self._check_model(manifest)
            result = plan(self.name, manifest, paths, self.home.chunker, self.home.model_id,
                          include, exclude, hidden, prune)  # fmt: skip
        finally:
            if manifest is not None and not shared:
                manifest.close()
        estimate_time(result, self.settings, self.home.model_id)
        return result

    def _ingest_locked(
        self,
        paths: list[Path],
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        hidden: bool = False,
        prune: bool = False,
        progress: Progress | None = None,
        hold: frozenset[str] = frozenset(),
    ) -> IngestReport:
        """`ingest` for a caller that holds the write lock (kb doctor --repair)."""
        from kb.ingest.pipeline import IngestPipeline

        self._check_model()
        if not self.manifest.get_meta("model"):
            self.manifest.set_meta("model", self.home.model_id)
        if not self.manifest.keyword_ready():
            self.build_keyword_index()
        with self._write_mark() as interrupted:
            pipeline = IngestPipeline(
                self.manifest,
                lambda: self.store,
                lambda texts: self.home.embedder.embed(texts),
                lambda: self.home.chunker,
                self.home.model_id,
                progress,
                self.settings.ingest_batch,
                recovering=interrupted,
            )
            return pipeline.run(paths, include, exclude, hidden, prune, hold)

    def remove(self, path: Path) -> tuple[int, int]:
        """Removes a document, or every document under a folder: (documents, chunks)."""
        self.home.require(self.name)
        target = os.path.abspath(path.expanduser())
        with self._writing_op():
            sources = [target] if self.manifest.get(target) else self.manifest.sources_under(target)
            if not sources:
                raise KbNotFound(f"{target} is not in knowledge base {self.name!r}; `kb list` shows what is")
            chunks = 0
            with self._write_mark():
                for source in sources:
                    record = self.manifest.get(source)
                    ids = record.chunk_ids if record else []
                    self.store.delete(ids)
                    self.manifest.delete(source)
                    self.manifest.bump_version()
                    chunks += len(ids)
        return len(sources), chunks

    def build_keyword_index(self) -> int:
        """Rebuilds the keyword index from the chunk texts in the vector store, without
        re-embedding; the caller holds the write lock. Returns the chunks indexed."""
        ids = [i for record in self.manifest.all() for i in record.chunk_ids]
        chunks = self.store.stored(ids) if ids else []
        self.manifest.rebuild_keyword_index(chunks)
        return len(chunks)

    def _ensure_keyword_index(self) -> None:
        """Builds the keyword index of a KB from before it existed, on its first hybrid or
        keyword search. Skipped (the search falls back to dense) when the home is read-only
        or another process is writing: a search never waits for a writer."""
        with self._gate.shared():  # the manifest is closed and reopened under the gate (close, rebuild)
            if not self.settings.kb_dir.exists() or self.manifest.readonly or self.manifest.keyword_ready():
                return
        try:
            with self._writing_op(lock_timeout_s=0, on_wait=lambda message: None):
                if not self.manifest.keyword_ready():
                    self.build_keyword_index()
        except LockTimeout:
            return

    def _fallback_notice(self, why: str) -> None:
        if not self._noticed:
            self._noticed = True
            self.on_notice(f"{why}; searching by embeddings alone")

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Diagnoses (and with `repair`, repairs) under one write lock, so a concurrent
        ingest's uncommitted chunks are never mistaken for orphans."""
        from kb import doctor

        problems = self.home.shared_problems()
        if problems:  # nothing else can be checked without them
            raise StoreError("; ".join(problems.values()))
        self.home.require(self.name)
        if not self.home.shared_store and not os.access(self.settings.kb_dir, os.W_OK):
            if repair:
                raise KbError(f"{self.settings.kb_dir} is read-only; `kb doctor --repair` needs write access")
            return doctor.diagnose(self)  # nobody can be writing a read-only KB
        # The gate exclusively: a rebuild moves files away under running readers otherwise.
        with self.home.write_lock(self.name, self.on_wait):
            self._refresh_store()
            with self._gate.exclusive():
                self._writer = threading.current_thread()
                try:
                    report = doctor.diagnose(self)
                    return doctor.repair(self, report) if repair and report.problems else report
                finally:
                    self._writer = None
                    if "store" in self.__dict__:
                        self._store_key = self.manifest.content_key()
                    if (shared := self._shared) is not None:
                        shared.mark_synced()

    def _drop_adapters(self) -> None:
        """Closes the manifest and store; the next use opens them afresh (kb doctor's
        rebuild). The caller holds the gate exclusively."""
        for name in ("manifest", "store"):
            adapter = drop(self, name)
            if adapter is not None:
                adapter.close()

    def close(self) -> None:
        """Waits for running operations, then closes what this instance opened."""
        with self._gate.exclusive():
            self._drop_adapters()
            if self._owns_home:
                self.home.close()

    # -- reading --------------------------------------------------------------------------
    def _options(self, mode: str | None, unique_sources: bool | None) -> tuple[str, bool]:
        from kb.config.settings import SEARCH_MODES

        mode = (mode or self.settings.search_mode).strip().lower()
        if mode not in SEARCH_MODES:
            raise InputError(f"unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
        return mode, self.settings.unique_sources if unique_sources is None else unique_sources

    def search(
        self,
        queries: list[str],
        k: int | None = None,
        mode: str | None = None,
        unique_sources: bool | None = None,
        record: bool = True,
    ) -> list[list[Hit]]:
        """The top `k` passages for each query (validated: empty, huge or binary queries
        raise InputError). `mode`: hybrid, dense or keyword (default: the search_mode
        setting); `unique_sources`: at most one passage per document. `record=False` keeps
        the searches out of `kb stats` (evaluation runs)."""
        from kb.answering.question import clean_question

        cleaned = [clean_question(q, self.settings.max_question_chars) for q in queries]
        mode, unique = self._options(mode, unique_sources)
        if mode != "dense":
            self._ensure_keyword_index()
        with self._reading():
            self._check_model()
            self._require_content()
            event = "search" if record else None
            return [self._retrieve(q, k or self.settings.top_k, mode, unique, record=event)[0] for q in cleaned]

    def _retrieve(
        self, query: str, k: int, mode: str, unique: bool, record: str | None
    ) -> tuple[list[Hit], float, float | None]:
        """(hits, milliseconds, the dense top-1 similarity for the drift monitor)."""
        from kb.metrics.store import Event
        from kb.retrieval import ranking

        started = time.perf_counter()
        if self.manifest.keyword_ready():
            hits, top1 = ranking.ranked(
                self.manifest, self.store, self.home.query_embedder, self.rare_terms, query, k, mode, unique
            )
        else:
            if mode != "dense":
                self._fallback_notice(
                    f"the keyword index of {self.name!r} is not built yet (a write to the knowledge base, or "
                    "`kb doctor --repair`, builds it)"
                )
            hits = ranking.dense_from_store(
                self.manifest, self.store, self.home.query_embedder, self.settings.kb_dir, query, k, unique
            )
            top1 = hits[0].score if hits else None
        elapsed = _ms(started)
        if record:
            self.home.record(Event(record, self.name, elapsed, retrieve_ms=elapsed, top1=top1))
        return hits, elapsed, top1

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        provider: str | None = None,
        use_cache: bool = True,
        stream: Any = None,
        mode: str | None = None,
        unique_sources: bool | None = None,
    ) -> Answer:
        """Answers from the KB through the provider chain, with verified citations. A cached
        answer needs neither the model nor the store. `mode` and `unique_sources` choose the
        passages as for `search`."""
        from kb.answering.question import clean_question

        started = time.perf_counter()
        q = clean_question(question, self.settings.max_question_chars)
        mode, unique = self._options(mode, unique_sources)
        if mode != "dense":
            self._ensure_keyword_index()
        with self._reading():
            self._check_model()
            k = top_k or self.settings.top_k
            return self._answer(q, k, mode, unique, provider, use_cache, stream, started)

    def _answer(
        self,
        q: str,
        k: int,
        mode: str,
        unique: bool,
        provider: str | None,
        use_cache: bool,
        stream: Any,
        started: float,
    ) -> Answer:
        from kb.answering.answer import Answer
        from kb.answering.citations import verify
        from kb.answering.prompt import PROMPT_VERSION, Prompt
        from kb.answering.question import cache_form
        from kb.cache import answer_key
        from kb.metrics.store import Event
        from kb.providers.base import CompletionRequest
        from kb.providers.chain import build_chain, chain_fingerprint

        key = answer_key(
            q=cache_form(q),
            kb=self.name,
            version=self.manifest.content_key(),
            model=self.home.model_id,
            chain=chain_fingerprint(self.settings, provider),
            k=k,
            mode=mode,
            unique_sources=unique,
            prompt=PROMPT_VERSION,
        )
        cache = self.home.cache
        if use_cache:
            hit = cache.get(key)
            if hit is not None:
                hit.question, hit.cached, hit.attempts = q, True, []
                hit.latency_ms = {"retrieve": 0.0, "generate": 0.0, "total": _ms(started)}
                event = Event("ask", self.name, hit.latency_ms["total"], provider=hit.provider, model=hit.model)
                event.cached, event.top1 = True, hit.top1
                self.home.record(event)
                return hit
        self._require_content()
        chain = build_chain(self.settings, self.home.breakers, self.home.query_embedder.embed, only=provider)
        hits, retrieve_ms, top1 = self._retrieve(q, k, mode, unique, record=None)
        request = CompletionRequest(question=q, passages=hits, prompt=Prompt(q, hits), stream=stream)
        generating = time.perf_counter()
        try:
            completion = chain.complete(request)
        except AllProvidersFailed as exc:
            event = Event("ask", self.name, _ms(started), retrieve_ms=retrieve_ms, generate_ms=_ms(generating))
            event.error, event.top1, event.attempts = exc.kind, top1, exc.attempts
            self.home.record(event)
            raise
        generate_ms = _ms(generating)
        text, citations, dropped = verify(completion.text, hits, completion.passages_given)
        latency = {"retrieve": retrieve_ms, "generate": generate_ms, "total": _ms(started)}
        answer = Answer(
            q, text, citations, completion.provider, completion.model, completion.usage, latency,
            completion.attempts, dropped_citations=dropped, top1=top1,
        )  # fmt: skip
        # A degraded answer (an earlier link failed) is not cached: once the preferred
        # provider is back, the same question should reach it.
        if use_cache and all(a.outcome == "ok" for a in completion.attempts):
            cache.set(key, answer)
        u = completion.usage
        event = Event(
            "ask", self.name, latency["total"], retrieve_ms, generate_ms, completion.provider, completion.model
        )
        event.input_tokens, event.output_tokens, event.cost_usd = u.input_tokens, u.output_tokens, u.cost_usd
        event.top1, event.attempts = top1, completion.attempts
        self.home.record(event)
        return answer

    def documents(self) -> list[dict]:
        """Every document with its chunk count, size and ingest time."""
        with self._reading():
            return [
                {
                    "source": r.source,
                    "chunks": len(r.chunk_ids),
                    "bytes": r.size,
                    "ingested_at": datetime.fromtimestamp(r.ingested_at, UTC).isoformat(timespec="seconds"),
                }
                for r in self.manifest.all()
            ]

    def info(self) -> dict:
        """Where the KB lives, its model, and its size."""
        with self._reading():
            docs, chunks, _ = self.manifest.totals()
            size = sum(f.stat().st_size for f in self.settings.kb_dir.rglob("*") if f.is_file())
            return {
                "home": str(self.settings.home),
                "kb": self.name,
                "model": self.manifest.get_meta("model") or self.home.model_id,
                "documents": docs,
                "chunks": chunks,
                "bytes": size,
            }

    def stats(self, since: str | None = None, all_kbs: bool = False) -> dict:
        """The `kb stats` figures for this KB, or (`all_kbs`) for every KB of the home."""
        from kb.metrics.stats import compute, parse_since

        start = parse_since(since)
        if not all_kbs:
            self.home.require(self.name)
        scope = None if all_kbs else self.name
        store = self.home.metrics
        if store is None:
            return compute([], [], self.home.breakers.states(), [] if start else None, self.settings.low_match)
        baseline = store.top1_before(scope, start) if start else None
        return compute(
            store.events(scope, start), store.attempts(scope, start), self.home.breakers.states(), baseline,
            self.settings.low_match,
        )  # fmt: skip

    def clear_cache(self) -> int:
        """Drops every cached answer and query embedding of the home."""
        return self.home.cache.clear()

    # -- background jobs ---------------------------------------------------------------------
    def enqueue_ingest(
        self,
        paths: list[Path],
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        hidden: bool = False,
        prune: bool = False,
        callback_url: str | None = None,
    ) -> dict:
        """Queues an ingest for a worker (`kb worker`, `kb serve --worker`) and returns the
        job at once. Paths are made absolute here: the worker runs elsewhere."""
        from kb.jobs.runner import enqueue_ingest

        params = {
            "paths": [os.path.abspath(p.expanduser()) for p in paths],
            "include": include or [],
            "exclude": exclude or [],
            "hidden": hidden,
            "prune": prune,
            "callback_url": callback_url,
        }
        return enqueue_ingest(self.home.jobs, self.home.queue, self.name, params).to_json()

    def jobs(self, all_kbs: bool = False, state: str | None = None, limit: int = 100) -> list[dict]:
        """The most recent jobs of this KB (or of every KB), newest first."""
        return [j.to_json() for j in self.home.jobs.recent(None if all_kbs else self.name, state, limit)]

    def job(self, job_id: str) -> dict:
        """One job: its state, progress, ingest report and webhook deliveries."""
        return self.home.jobs.get(job_id).to_json()

    def retry_job(self, job_id: str) -> dict:
        """Queues a done or failed job again."""
        job = self.home.jobs.requeue(job_id)
        self.home.queue.submit(job.id)
        return job.to_json()

    # -- the knowledge bases of the home -----------------------------------------------------
    def knowledge_bases(self) -> list[dict]:
        """Every knowledge base under the home, with its counts."""
        out = []
        for name in self.home.names():
            other = KnowledgeBase(self.home.settings_for(name), self.home)
            try:
                info = other.info()
            finally:
                other.close()
            out.append({"kb": name, "documents": info["documents"], "chunks": info["chunks"], "bytes": info["bytes"]})
        return out

    def delete_knowledge_base(self, name: str) -> None:
        """Deletes a knowledge base with everything in it (waits for its writer)."""
        if name == self.name:
            with self._gate.exclusive():
                self._drop_adapters()
        self.home.delete(name, self.on_wait)
