"""`KnowledgeBase`: what can be done to one knowledge base — ingest, watch, plan, remove,
search, ask, list its documents, describe it, check and repair it, and its stats.

Every front-end (CLI, HTTP, MCP, the job worker) and every Python user calls these methods;
they take the option values of kb.options and return typed values, whose `to_json` is the
machine output each front-end prints. How the knowledge base is reached — its adapters and
the rules that keep readers and writers consistent, locally or shared — is kb.access's
business; the answering pipeline is kb.answering's. Home-wide operations (the catalogue,
jobs, the cache) live on `Library`.

One instance may serve many threads (the HTTP service shares one per KB). Read operations
never create anything: a KB that does not exist is an error.

Search is hybrid by default: the dense candidates (ids and similarities from the vector
store) and the keyword candidates (FTS5 bm25 over the manifest's `chunks`) are fused by
their normalised scores (retrieval/fusion.py), and only the final top-k's texts are read,
from the manifest. A KB from before the keyword index gets it on its first write or hybrid
search; until then, and in a read-only home, searches are dense, with a one-line notice.
A search filter narrows each candidate search to the documents it leaves
(retrieval/filtering.py); a configured reranker reorders the best fused candidates, and
when it fails the fused order stands, with a one-line notice (retrieval/reranking.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kb.config import Settings
from kb.embedding.identity import DimensionChecked
from kb.errors import DocumentNotFound, InputError, KbError, LockTimeout, StoreError
from kb.home import Home
from kb.options import IngestScope, PathLike, ResolvedSearch, SearchOptions, scope_of

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.answering.answerer import Answerer
    from kb.answering.conversation import Turn
    from kb.doctor import DoctorReport
    from kb.documents import Hit
    from kb.embedding import Embedder
    from kb.ingest.parts import IngestSplit
    from kb.ingest.pipeline import IngestPipeline, IngestReport, Progress
    from kb.ingest.planning import IngestPlan
    from kb.providers.base import Attempt
    from kb.results import DocumentInfo, KbInfo
    from kb.retrieval.filtering import Scope
    from kb.retrieval.query import Query
    from kb.retrieval.ranking import Ranked
    from kb.retrieval.reranking import RerankStage

log = logging.getLogger("kb")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class KnowledgeBase:
    """One knowledge base. `home` is shared by the knowledge bases of a long-lived process
    (`Library`); without one, this instance opens and closes its own."""

    def __init__(self, settings: Settings, home: Home | None = None) -> None:
        self.settings = settings
        self.home = home or Home(settings)
        self._owns_home = home is None
        self.access = self.home.open(settings.kb)
        self.on_notice: Callable[[str], None] = log.warning  # "searching by embeddings alone"
        self._noticed = False
        self._rerank_failing = False  # told once until the reranker answers again
        self._answerer: Answerer | None = None

    @property
    def name(self) -> str:
        return self.settings.kb

    @property
    def on_wait(self) -> Callable[[str], None]:
        """Told when an operation waits for another writer."""
        return self.access.on_wait

    @on_wait.setter
    def on_wait(self, value: Callable[[str], None]) -> None:
        self.access.on_wait = value

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Waits for running operations, then closes what this instance opened."""
        self.access.close()
        if self._owns_home:
            self.home.close()

    def _record(self, event: Any) -> None:
        self.home.record(event)

    # -- writing ------------------------------------------------------------------------------
    def ingest(
        self,
        paths: IngestScope | Sequence[PathLike],
        *,
        progress: Progress | None = None,
        lock_timeout_s: float | None = None,
        hold: frozenset[str] = frozenset(),
    ) -> IngestReport:
        """Adds and updates the documents of `paths` (a list of files and folders, or an
        `IngestScope` with filters), and drops documents whose files are gone. Filters narrow
        what is read, never what is kept, unless the scope says `prune`. `lock_timeout_s`
        overrides how long to wait for another writer (background jobs); files in `hold` are
        left as they are this time (`watch`: still being written)."""
        from kb.metrics.store import Event

        scope = scope_of(paths)
        missing = [str(p) for p in scope.paths if not os.path.lexists(p.expanduser())]
        if missing and len(missing) == len(scope.paths):  # nothing to read: create nothing either
            raise InputError(f"nothing to ingest: {', '.join(missing[:5])} "
                             f"{'does' if len(missing) == 1 else 'do'} not exist", paths=missing)  # fmt: skip
        started = time.perf_counter()
        with self.access.writing(lock_timeout_s):
            report = self._ingest_locked(scope, progress, hold)
        event = Event("ingest", self.name, _ms(started), model=self.home.model_id,
                      error="failed files" if report.failed else None)  # fmt: skip
        event.chunks = report.chunks_embedded
        self._record(event)
        return report

    def _ingest_locked(
        self, scope: IngestScope, progress: Progress | None = None, hold: frozenset[str] = frozenset()
    ) -> IngestReport:
        """`ingest` for a caller that holds the write lock (a repair re-ingesting files)."""
        self._ready_for_writes()
        with self.access.write_mark() as interrupted:
            return self._pipeline(progress, recovering=interrupted).run(scope, hold)

    def _ready_for_writes(self) -> None:
        """Under the write lock: the model checked and recorded, the keyword index built."""
        access = self.access
        access.check_model()
        if not access.manifest.get_meta("model"):
            access.manifest.set_meta("model", self.home.model_id)
        if not access.manifest.keyword_ready():
            access.build_keyword_index()

    def _pipeline(self, progress: Progress | None, recovering: bool = False, record: bool = True) -> IngestPipeline:
        """`record`: the caller holds the write lock, so a new KB takes the encoder's dimension."""
        from kb.ingest.pipeline import IngestPipeline

        access = self.access
        return IngestPipeline(access.manifest, lambda: access.store, lambda texts: self._embed(texts, record),
                              lambda: self.home.chunker, self.home.model_id, progress, self.settings.ingest_batch,
                              recovering=recovering)  # fmt: skip

    def _embed(self, texts: list[str], record: bool) -> Any:
        """The ingest encoder's vectors, once their dimension is the KB's (with `record`, the
        first batch of a new KB records it). The encoder loads on the first call, not before."""
        vectors = self.home.embedder.embed(texts)
        if len(vectors):
            self.access.check_dimension(int(vectors.shape[1]), record=record)
        return vectors

    # -- a background ingest in parts (see kb.ingest.parts and kb.jobs.runner) -----------------
    def split_ingest(
        self, paths: IngestScope | Sequence[PathLike], part_files: int, lock_timeout_s: float | None = None
    ) -> IngestSplit:
        """Plans an ingest of `paths` in parts of at most `part_files` files, which
        `ingest_part` can run in several processes at once; reads no file."""
        from kb.ingest import parts

        with self.access.writing(lock_timeout_s):
            self._ready_for_writes()  # creates the KB, so its parts may read it
        with self.access.reading():
            return parts.split(self._pipeline(None), scope_of(paths), part_files)

    def ingest_part(
        self, files: Sequence[PathLike], *, progress: Progress | None = None, lock_timeout_s: float | None = None
    ) -> IngestReport:
        """Reads, chunks and embeds `files` without the write lock, then commits them under
        it; the report counts these files only."""
        started = time.perf_counter()
        access = self.access
        with access.reading():
            access.check_model()
            pipeline = self._pipeline(progress, record=False)
            prepared = pipeline.prepare([Path(os.path.abspath(Path(f).expanduser())) for f in files])
        with access.writing(lock_timeout_s), access.write_mark():
            commit = self._pipeline(progress)
            commit.report = pipeline.report
            if prepared.vectors:
                access.check_dimension(len(next(iter(prepared.vectors.values()))), record=True)
            report = commit.commit(prepared)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def finish_split(self, split: IngestSplit, prune: bool, report: IngestReport, lock_timeout_s: float | None = None,
                     started: float | None = None) -> IngestReport:  # fmt: skip
        """Ends an ingest in parts: removes the documents its plan found gone (or, with
        `prune`, filtered out) that are still listed, and records the ingest in the stats.
        `report`: its planning's and parts' reports added up; `started`: time.time() when it began."""
        from kb.ingest.discovery import is_gone
        from kb.metrics.store import Event

        if split.removals:
            with self.access.writing(lock_timeout_s), self.access.write_mark():
                pipeline = self._pipeline(None)
                pipeline.report = report
                for source in split.removals:
                    if prune or is_gone(source):
                        pipeline.remove(source)
        ms = round((time.time() - started) * 1000, 2) if started else 0.0
        event = Event(
            "ingest", self.name, ms, model=self.home.model_id, error="failed files" if report.failed else None
        )
        event.chunks = report.chunks_embedded
        self._record(event)
        return report

    def watch(
        self, paths: IngestScope | Sequence[PathLike], stop: threading.Event, settle_s: float | None = None
    ) -> Iterator[IngestReport]:
        """Keeps the knowledge base in sync with `paths` until `stop` is set: each batch of
        changes, once settled (see kb.ingest.watching), is applied by a full `ingest` of the
        scope — same filters, write lock and crash safety — and its report yielded. The lock
        is free between batches. The first batch catches up with changes made before the
        watch began; reports that changed nothing are not yielded. Stopping waits for the
        batch in progress."""
        from kb.ingest import watching

        scope = scope_of(paths).absolute()
        quiet = watching.SETTLE_S if settle_s is None else settle_s
        held: set[str] = set()
        catch_up = True
        for changed in watching.changes(list(scope.paths), stop):
            pending = {p for p in changed if watching.relevant(p, list(scope.paths), scope.hidden, self.settings.home)}
            if not (pending or held or catch_up):
                continue
            catch_up = False
            held = watching.settle(pending | held, stop, quiet)
            if stop.is_set():
                return
            try:
                report = self.ingest(scope, hold=frozenset(held))
            except LockTimeout as exc:  # another writer for long: try again at the next tick
                self.on_wait(f"{exc}; retrying")
                catch_up = True
                continue
            # Failures of files this batch did not touch were reported when they happened.
            report.failed = [f for f in report.failed if f["path"] in pending]
            if report.changed or report.failed:
                yield report

    def plan_ingest(self, paths: IngestScope | Sequence[PathLike]) -> IngestPlan:
        """What `ingest` would add, update, remove (and with `prune`, prune), with the chunks
        and time it would take on this machine. Writes nothing and takes no lock: the
        manifest and the metrics are opened read-only, and a KB that does not exist stays so."""
        from kb.ingest.planning import estimate_time, plan

        with self.access.planning_manifest() as manifest:
            if manifest is not None:
                self.access.check_model(manifest)
            result = plan(self.name, manifest, scope_of(paths), self.home.chunker, self.home.model_id)
        estimate_time(result, self.settings, self.home.model_id)
        return result

    def remove(self, path: PathLike) -> tuple[int, int]:
        """Removes a document, or every document under a folder: (documents, chunks). A
        relative path is taken from the current directory."""
        self.home.require(self.name)
        target = os.path.abspath(Path(path).expanduser())
        access = self.access
        with access.writing():
            sources = [target] if access.manifest.get(target) else access.manifest.sources_under(target)
            if not sources:
                raise DocumentNotFound(f"{target} is not in knowledge base {self.name!r}",
                                       remedy="list_documents", kb=self.name, path=target)  # fmt: skip
            chunks = 0
            with access.write_mark():
                for source in sources:
                    record = access.manifest.get(source)
                    ids = record.chunk_ids if record else []
                    access.store.delete(ids)
                    access.manifest.delete(source)
                    access.manifest.bump_version()
                    chunks += len(ids)
        return len(sources), chunks

    # -- reading ------------------------------------------------------------------------------
    def _resolve(self, options: SearchOptions) -> ResolvedSearch:
        s = self.settings
        return options.resolved(s.top_k, s.search_mode, s.unique_sources, s.reranker.kind != "none")

    def search(
        self, query: str, k: int | None = None, *, options: SearchOptions | None = None, record: bool = True
    ) -> list[Hit]:
        """The top `k` passages for `query` (default: the top_k setting). `options` chooses the
        mode (hybrid, dense or keyword), whether to keep one passage per document, the
        documents searched (`filter`) and whether a configured reranker reorders them; its `k`
        gives way to the argument. `record=False` keeps the search out of `kb stats`
        (evaluation runs). Empty, huge or binary queries raise InputError; a filter that
        leaves no document, NoMatchingDocuments."""
        return self.search_many([query], (options or SearchOptions()).merged(k=k), record=record)[0]

    def search_many(
        self, queries: Sequence[str], options: SearchOptions | None = None, record: bool = True
    ) -> list[list[Hit]]:
        """`search` for several queries at once (validated first, all of them)."""
        from kb.answering.question import clean_question
        from kb.retrieval.query import Query

        cleaned = [clean_question(q, self.settings.max_question_chars) for q in queries]
        search = self._resolve(options or SearchOptions())
        if search.mode != "dense":
            self.access.ensure_keyword_index()
        with self.access.reading():
            self.access.check_model()
            self.access.require_content()
            scope = self._scope(search)
            event = "search" if record else None
            asked = [Query(q) for q in cleaned]
            dense: list[Any] = [None] * len(asked)
            shared_ms = 0.0
            if len(asked) > 1 and self.access.manifest.keyword_ready():  # one encoder and store call for all
                from kb.retrieval import ranking

                started = time.perf_counter()
                dense = ranking.nearest_of(self.access.store, self._query_embedder(), asked, search.k,
                                           search.mode, search.unique_sources, scope=scope,
                                           rerank=self._rerank_stage(search))  # fmt: skip
                shared_ms = _ms(started) / len(asked)
            return [self._retrieve(q, search, scope, record=event, dense=d, shared_ms=shared_ms).hits
                    for q, d in zip(asked, dense, strict=True)]  # fmt: skip

    def _query_embedder(self) -> Embedder:
        """The home's query encoder, its vectors held to the dimension this KB was built with."""
        return DimensionChecked(self.home.query_embedder, self.access.check_dimension)

    def _scope(self, search: ResolvedSearch) -> Scope | None:
        """The documents `search.filter` leaves (None: every one); under `reading`."""
        from kb.retrieval.filtering import scope_of

        return scope_of(self.access.manifest, search.filter, self.name)

    def _rerank_stage(self, search: ResolvedSearch) -> RerankStage | None:
        from kb.retrieval.reranking import RerankStage

        reranker = self.home.reranker if search.rerank else None
        return RerankStage(reranker, self.settings.reranker.candidates) if reranker is not None else None

    def _retrieve(
        self,
        query: Query,
        search: ResolvedSearch,
        scope: Scope | None,
        record: str | None = None,
        dense: list[tuple[str, float]] | None = None,
        shared_ms: float = 0.0,
    ) -> Ranked:
        """The ranked hits, with their milliseconds and the dense top-1 similarity for the
        drift monitor. `dense`: the query's dense candidates when a batch of searches found
        them together (`shared_ms` each, counted in its milliseconds)."""
        from kb.metrics.store import Event
        from kb.retrieval import ranking

        access = self.access
        embedder = self._query_embedder()
        started = time.perf_counter()
        rerank = self._rerank_stage(search)
        if access.manifest.keyword_ready():
            result = ranking.ranked(access.manifest, access.store, embedder, access.rare_terms, query, search.k,
                                    search.mode, search.unique_sources, scope=scope, rerank=rerank,
                                    dense=dense)  # fmt: skip
        else:
            if search.mode != "dense":
                self._fallback_notice(
                    f"the keyword index of {self.name!r} is not built yet (the next write to it, or a repair, builds it)"
                )
            result = ranking.dense_from_store(access.manifest, access.store, embedder,
                                              self.settings.kb_dir, query, search.k, search.unique_sources,
                                              scope=scope, rerank=rerank)  # fmt: skip
        result.ms = _ms(started) + shared_ms
        self._rerank_notice(result.attempts)
        if record:
            event = Event(record, self.name, result.ms, retrieve_ms=result.ms, top1=result.top1)
            event.attempts = result.attempts
            self._record(event)
        return result

    def _fallback_notice(self, why: str) -> None:
        if not self._noticed:
            self._noticed = True
            self.on_notice(f"{why}; searching by embeddings alone")

    def _rerank_notice(self, attempts: list[Attempt]) -> None:
        from kb.retrieval.reranking import notice

        for attempt in attempts:
            message = notice(attempt)
            if message and not self._rerank_failing:
                self.on_notice(message)
            self._rerank_failing = message is not None

    def ask(
        self,
        question: str,
        k: int | None = None,
        *,
        options: SearchOptions | None = None,
        provider: str | None = None,
        use_cache: bool = True,
        stream: Any = None,
        history: Sequence[Turn | Mapping[str, Any]] = (),
    ) -> Answer:
        """Answers from the knowledge base through the provider chain, with verified
        citations. `k` and `options` choose the passages as for `search`; `provider` uses one
        link of the chain only; `stream` receives the answer's text as it is written
        (`text(delta)`, `reset(reason)`). `history` holds the conversation's earlier turns
        (`Turn`s, or {"role", "content"} mappings), oldest first: the passages are then
        retrieved for the question as the conversation means it, and the turns reach the
        model's prompt (kb.answering.conversation). A cached answer needs neither the model
        nor the store."""
        from kb.answering.conversation import clean_history
        from kb.answering.question import clean_question

        started = time.perf_counter()
        q = clean_question(question, self.settings.max_question_chars)
        turns = clean_history(history)
        search = self._resolve((options or SearchOptions()).merged(k=k))
        if search.mode != "dense":
            self.access.ensure_keyword_index()
        with self.access.reading():
            self.access.check_model()
            return self._answering().answer(q, search, provider, use_cache, stream, started, turns)

    def _answering(self) -> Answerer:
        if self._answerer is None:
            from kb.answering.answerer import Answerer

            home = self.home
            # The query encoder opens at its first use: an answer from the cache needs none.
            self._answerer = Answerer(
                self.name, self.settings, home.cache, home.breakers, lambda texts: home.query_embedder.embed(texts),
                home.model_id,
                lambda query, search: self._retrieve(query, search, self._scope(search)),
                self.access.manifest.content_key, self.access.require_content, self._record,
            )  # fmt: skip
        return self._answerer

    def documents(self) -> list[DocumentInfo]:
        """Every document with its chunk count, size and ingest time."""
        from kb.results import DocumentInfo

        with self.access.reading():
            return [DocumentInfo.of(r.source, len(r.chunk_ids), r.size, r.ingested_at)
                    for r in self.access.manifest.all()]  # fmt: skip

    def info(self) -> KbInfo:
        """Where the knowledge base lives, its model, and its size."""
        from kb.results import KbInfo

        with self.access.reading():
            manifest = self.access.manifest
            docs, chunks, _ = manifest.totals()
            size = sum(f.stat().st_size for f in self.settings.kb_dir.rglob("*") if f.is_file())
            model = manifest.get_meta("model") or self.home.model_id
            return KbInfo(str(self.settings.home), self.name, model, docs, chunks, size)

    def stats(self, since: str | None = None) -> dict[str, Any]:
        """The `kb stats` figures of this knowledge base (see kb.metrics.stats)."""
        self.home.require(self.name)
        return self.home.stats(self.name, since)

    def stats_series(self, bucket: str, since: str | None = None) -> dict[str, Any]:
        """The `kb stats` figures over time: `since` (default 24h) in buckets of `bucket`
        (see kb.metrics.series)."""
        self.home.require(self.name)
        return self.home.stats_series(self.name, since, bucket)

    # -- health ---------------------------------------------------------------------------------
    def doctor(self, repair: bool = False) -> DoctorReport:
        """Diagnoses (and with `repair`, repairs) under one write lock, so a concurrent
        ingest's uncommitted chunks are never mistaken for orphans."""
        from kb import doctor

        problems = self.home.problems()
        if problems:  # nothing else can be checked without them
            raise StoreError("; ".join(problems.values()))
        self.home.require(self.name)
        if self.access.read_only:
            if repair:
                raise KbError(f"{self.settings.kb_dir} is read-only; a repair needs write access to it",
                              kb=self.name, path=str(self.settings.kb_dir))  # fmt: skip
            return doctor.diagnose(self.access)  # nobody can be writing a read-only KB
        # The gate exclusively: a rebuild moves files away under running readers otherwise.
        with self.access.maintaining():
            report = doctor.diagnose(self.access)
            if repair and report.problems:
                return doctor.repair(self.access, report, lambda paths: self._ingest_locked(IngestScope.of(paths)))
            return report
