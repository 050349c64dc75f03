"""`Library`: the knowledge bases of one KB_HOME and what concerns them all — the catalogue,
background jobs, the cache and the home-wide stats.

Long-lived front-ends (the HTTP service, the MCP server, the job worker) hold one Library,
which hands out one thread-safe KnowledgeBase per name, all sharing the home's cache,
metrics, breakers and encoders. The CLI holds one for a command.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kb.config import Settings
from kb.errors import InputError
from kb.home import Home
from kb.knowledge_base import KnowledgeBase
from kb.options import IngestScope, JobState, PathLike, scope_of

if TYPE_CHECKING:
    from kb.ingest.parts import IngestSplit
    from kb.ingest.pipeline import IngestReport, Progress
    from kb.jobs.store import Job
    from kb.results import KbSummary
    from kb.tokens import Scope, Token

JOB_LOCK_TIMEOUT_S = 24 * 3600  # a job waits for another job of its KB rather than fail


class Library:
    def __init__(self, settings: Settings, long_lived: bool = False) -> None:
        self.settings = settings
        self.home = Home(settings, long_lived)
        self._kbs: dict[str, KnowledgeBase] = {}
        self._lock = threading.Lock()
        self.on_wait: Callable[[str], None] = lambda message: None
        self.on_notice: Callable[[str], None] | None = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- knowledge bases ------------------------------------------------------------------------
    def kb(self, name: str | None = None) -> KnowledgeBase:
        """The knowledge base `name` (default: the configured one). Opening one creates
        nothing, and reads of one that does not exist raise KbNotFound. Only existing
        knowledge bases are kept, so clients naming typos cannot grow the process."""
        name = (name or "").strip() or self.settings.kb
        settings = self.home.settings_for(name)  # a malformed name is a ConfigError
        with self._lock:
            kb = self._kbs.get(name)
            if kb is None:
                kb = KnowledgeBase(settings, self.home)
                kb.on_wait = self.on_wait
                if self.on_notice is not None:
                    kb.on_notice = self.on_notice
                if self.home.exists(name):
                    self._kbs[name] = kb
            return kb

    def names(self) -> list[str]:
        return self.home.names()

    def knowledge_bases(self) -> list[KbSummary]:
        """Every knowledge base of the home, with its counts."""
        from kb.results import KbSummary

        out = []
        for name in self.home.names():
            base = self.kb(name)
            info = base.info()
            out.append(KbSummary(name, info.documents, info.chunks, info.bytes))
        return out

    def delete(self, name: str) -> None:
        """Deletes a knowledge base with everything in it (waits for its writer)."""
        self.home.require(name)
        with self._lock:
            kb = self._kbs.pop(name, None)
        if kb is not None:
            kb.close()  # waits for its running operations
        self.home.storage.delete(name, self.on_wait)

    def stats(self, since: str | None = None) -> dict[str, Any]:
        """The `kb stats` figures of every knowledge base of the home."""
        return self.home.stats(None, since)

    def stats_series(self, bucket: str, since: str | None = None) -> dict[str, Any]:
        """The `kb stats` figures over time, of every knowledge base of the home."""
        return self.home.stats_series(None, since, bucket)

    def clear_cache(self) -> int:
        """Drops every cached answer and query embedding of the home."""
        return self.home.cache.clear()

    # -- background jobs --------------------------------------------------------------------------
    def enqueue_ingest(
        self, kb: str | None, paths: IngestScope | Sequence[PathLike], callback_url: str | None = None
    ) -> Job:
        """Records an ingest job and queues it for a worker (`kb worker`, `kb serve
        --worker`); returns the job at once. Paths are made absolute here: the worker runs
        elsewhere. The job exists before any worker can see it."""
        name = (kb or "").strip() or self.settings.kb
        self.home.settings_for(name)  # a malformed name is refused before anything is queued
        job = self.home.jobs.create(name, "ingest", scope_of(paths).absolute(), callback_url)
        self.home.queue.submit(job.id)
        return job

    def jobs(self, kb: str | None = None, state: JobState | None = None, limit: int = 100) -> list[Job]:
        """The most recent jobs, newest first: of one knowledge base, or (kb=None) of all."""
        return self.home.jobs.recent(kb, state, limit)

    def job(self, job_id: str) -> Job:
        """One job: its state, progress, ingest report and webhook deliveries."""
        return self.home.jobs.get(job_id)

    def retry_job(self, job_id: str) -> Job:
        """Queues a done or failed job again."""
        job = self.home.jobs.requeue(job_id)
        self.home.queue.submit(job.id)
        return job

    # -- the worker's side of a job (kb.jobs.runner) ---------------------------------------------
    def split_job(self, job: Job) -> IngestSplit:
        """Plans an ingest job in parts; waits for another job of its KB to commit."""
        return self.kb(job.kb).split_ingest(job.scope, self.settings.queue.part_files, JOB_LOCK_TIMEOUT_S)

    def run_part(self, part: Job, progress: Progress) -> IngestReport:
        """Reads, embeds and commits one part of an ingest job."""
        return self.kb(part.kb).ingest_part(part.scope.paths, progress=progress, lock_timeout_s=JOB_LOCK_TIMEOUT_S)

    def finish_job(self, job: Job, split: IngestSplit, report: IngestReport) -> IngestReport:
        """Ends an ingest job whose parts are all in: the removals its plan found."""
        return self.kb(job.kb).finish_split(split, job.scope.prune, report, JOB_LOCK_TIMEOUT_S, job.started_at)

    # -- access tokens of kb serve ------------------------------------------------------------------
    def create_token(
        self, name: str, scope: Scope, kbs: Sequence[str] = (), rpm: int | None = None, expires_in: str | None = None
    ) -> tuple[str, Token]:
        """A new token: (its secret, shown this once; its record). `kbs` limits it to those
        knowledge bases; `rpm` to requests per minute; `expires_in` to a duration (30d)."""
        from kb.config.loading import validate_kb_name
        from kb.options import duration_s
        from kb.tokens import new_token

        validate_kb_name(name)  # token names follow the rules of knowledge base names
        for kb in kbs:
            validate_kb_name(kb)
        if rpm is not None and rpm < 1:
            raise InputError(f"{rpm} requests per minute allows nothing; give 1 or more", field="rpm")
        expires_at = time.time() + duration_s(expires_in, "expires") if expires_in else None
        secret, token = new_token(name, scope, tuple(dict.fromkeys(kbs)), rpm, expires_at)
        self.home.tokens.add(token)
        return secret, token

    def tokens(self) -> list[Token]:
        return self.home.tokens.all()

    def revoke_token(self, name: str) -> Token:
        """Revokes a token at once on every instance that reads this store (within a second)."""
        return self.home.tokens.revoke(name)

    def close(self) -> None:
        with self._lock:
            kbs, self._kbs = list(self._kbs.values()), {}
        for kb in kbs:
            kb.close()
        self.home.close()
