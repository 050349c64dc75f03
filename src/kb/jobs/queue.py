"""The job queue: huey, carrying job ids (and webhook deliveries) to workers.

huey on SQLite under KB_HOME is the embedded default; `queue.url = "redis://..."` (or else
`state.url`) puts the same queue on Redis, so workers on several machines share it. huey hands a task to one
worker and forgets it, so a worker that dies mid-job would lose it: the job's lease in the
job store is what brings it back (runner.py re-submits jobs whose lease ran out).

Producers (kb ingest --background, kb serve) and consumers (kb worker, kb serve --worker)
build the same queue from the same settings; tasks run through the handler a consumer binds
(runner.py's Runner).
"""

from __future__ import annotations

from typing import Any, Protocol

from kb.config import Settings
from kb.errors import StoreError


class TaskHandler(Protocol):
    def run(self, job_id: str) -> None: ...
    def deliver(self, job_id: str, event: str) -> None: ...


class JobQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.huey = _open_huey(settings)
        self._runner: TaskHandler | None = None

        @self.huey.task(name="kb.run_job")
        def run_job(job_id: str) -> None:
            self._require_runner().run(job_id)

        @self.huey.task(name="kb.notify")
        def deliver(job_id: str, event: str) -> None:
            self._require_runner().deliver(job_id, event)

        self._run_job, self._deliver = run_job, deliver

    @property
    def backend(self) -> str:
        return "redis" if _url(self.settings) else "sqlite"

    def _require_runner(self) -> TaskHandler:
        if self._runner is None:  # only consumers execute tasks, and they bind a runner first
            raise RuntimeError("a queue task ran in a process without a job runner")
        return self._runner

    def bind(self, runner: TaskHandler) -> None:
        self._runner = runner

    def submit(self, job_id: str) -> None:
        try:
            self._run_job(job_id)
        except Exception as exc:  # the storage behind huey is down or unwritable
            raise StoreError(f"cannot queue job {job_id} ({exc}); check the queue ({self.backend})") from exc

    def submit_delivery(self, job_id: str, event: str) -> None:
        self._deliver(job_id, event)

    def depth(self) -> int:
        """Tasks waiting for a worker."""
        try:
            return int(self.huey.pending_count())
        except Exception as exc:
            raise StoreError(f"the job queue ({self.backend}) cannot be read ({exc})") from exc

    def consumer(self, workers: int, embedded: bool = False) -> Any:
        """A huey consumer with thread workers. `embedded` (inside kb serve) leaves the
        process's signal handlers to the server."""
        from huey.consumer import Consumer

        class EmbeddedConsumer(Consumer):
            def _set_signal_handlers(self) -> None:
                pass

        kind = EmbeddedConsumer if embedded else Consumer
        return kind(self.huey, workers=workers, worker_type="thread", periodic=False, max_delay=1.0)

    def close(self) -> None:
        self.huey.storage.close()


def _url(settings: Settings) -> str | None:
    """queue.url, else the shared state's Redis: instances that share state share the queue."""
    return settings.queue.url or settings.state.url


def _open_huey(settings: Settings) -> Any:
    url = _url(settings)
    if url:
        from huey import RedisHuey

        return RedisHuey("kb", url=url, results=False)
    from huey import SqliteHuey

    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("kb", filename=str(settings.home / "queue.db"), results=False)
    except Exception as exc:
        raise StoreError(f"cannot open the job queue under {settings.home} ({exc})") from exc
