"""Running jobs on workers: claim with a lease, plan, run the parts, record, notify.

A worker claims a job by taking its lease in the job store and renews it every third of
`queue.lease_s` while the job runs. An ingest job is planned by the worker that claims it
(discovery and the stat pass, kb.ingest.parts) and split into parts of at most
`queue.part_files` files: job records of their own, each queued, so that every worker can
take one. A part is read, chunked and embedded without the KB's write lock, and committed
under it in one short, idempotent step; parts of one KB therefore embed side by side and
commit one at a time, on one machine or several. The job's worker takes parts too while it
waits, adds up their progress into the job's, and when all are in, removes the documents
the plan found gone, records the report and sends one webhook.

A worker that dies loses nothing: the lease of its part (or its job) runs out, and any
other worker's reclaimer submits it again. A part that fails is tried again, up to
`PART_RUNS` times in all; then the job fails with its reasons, and the parts committed
stay. A part that failed on its embedding service (a ProviderError) is not tried again:
the embedder has retried with backoff already, and more tries would only reach the same
service and open its breaker for every search. A job's retry plans afresh, so it skips
what was committed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from kb.config import Settings
from kb.errors import KbError, ProviderError
from kb.options import IngestScope, JobState

if TYPE_CHECKING:
    from kb.ingest.parts import IngestSplit
    from kb.ingest.pipeline import IngestReport, Progress
    from kb.jobs.queue import JobQueue
    from kb.jobs.store import Job, JobStore

PROGRESS_EVERY_S = 0.5
PART_RUNS = 3  # tries of a part before its job fails
_FINAL = {"retry": False}  # a failed part's report when trying it again cannot help
WAIT_S = 0.2  # how often the job's worker looks at its parts when it has none to run


class IngestWork(Protocol):
    """The core's side of an ingest job (kb.library.Library)."""

    def split_job(self, job: Job) -> IngestSplit: ...
    def run_part(self, part: Job, progress: Progress) -> IngestReport: ...
    def finish_job(self, job: Job, split: IngestSplit, report: IngestReport) -> IngestReport: ...


class _Progress:
    """The ingest pipeline's progress, written to the job record (at most twice a second)."""

    def __init__(self, jobs: JobStore, job_id: str, worker: str) -> None:
        self.jobs, self.job_id, self.worker = jobs, job_id, worker
        self.state = {"files_total": 0, "files_done": 0, "chunks": 0, "bytes_total": 0, "bytes_done": 0}
        self._written = 0.0
        self._bytes_done = 0.0

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._written >= PROGRESS_EVERY_S:
            self._written = now
            self.jobs.progress(self.job_id, self.worker, dict(self.state))

    def start(self, total_files: int) -> None:
        self.state["files_total"] = total_files
        self._write(force=True)

    def planned(self, work_bytes: int) -> None:
        self.state["bytes_total"] = work_bytes
        self._write()

    def advance(self, path: str, chunks: int) -> None:
        self.state["files_done"] += 1
        self._write()

    def worked(self, work_bytes: float) -> None:
        self._bytes_done += work_bytes
        self.state["bytes_done"] = round(self._bytes_done)
        self._write()

    def embedded(self, chunks: int) -> None:
        self.state["chunks"] += chunks
        self._write()

    def finish(self) -> None:
        self._write(force=True)


def _outcome(run: Any, final: type[KbError] | None = None) -> tuple[JobState, dict | None, str | None]:
    """(state, report, error) of `run`; a failure of the `final` kind reports `_FINAL`."""
    try:
        report = run()
    except KbError as exc:
        return "failed", _FINAL if final is not None and isinstance(exc, final) else None, str(exc)
    except Exception as exc:  # a bug must fail the job, not leave it running forever
        return "failed", None, f"internal error ({type(exc).__name__}: {exc})"
    return "done", report.to_json(), None


def _number(part: Job) -> int:
    return int(part.id.rsplit(".", 1)[1]) + 1


def _lapsed(part: Job) -> bool:
    return part.state == "running" and (part.lease_until or 0) < time.time()


class _Summed:
    """A split job's progress: its planning's and its parts' added up (twice a second)."""

    def __init__(self, jobs: JobStore, job_id: str, worker: str, split: IngestSplit) -> None:
        self.jobs, self.job_id, self.worker = jobs, job_id, worker
        planned = split.report
        self.base = {"files_total": planned.files_seen, "files_done": planned.unchanged + len(planned.failed),
                     "chunks": 0, "bytes_total": split.work_bytes, "bytes_done": 0}  # fmt: skip
        self._written = 0.0

    def write(self, parts: list[Job], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < PROGRESS_EVERY_S:
            return
        self._written = now
        state: dict[str, Any] = dict(self.base)
        for part in parts:
            for key in ("files_done", "chunks", "bytes_done"):
                state[key] += int(part.progress.get(key) or 0)
        state["files_done"] = min(state["files_done"], state["files_total"])
        state["parts_total"] = len(parts)
        state["parts_done"] = sum(p.state == "done" for p in parts)
        state["workers"] = sorted({p.worker for p in parts if p.worker})
        with contextlib.suppress(KbError):  # progress is a view; the next write comes soon
            self.jobs.progress(self.job_id, self.worker, state)


class _Lease:
    """Renews a job's lease in the background while the job runs."""

    def __init__(self, jobs: JobStore, job_id: str, worker: str, lease_s: float) -> None:
        self.jobs, self.job_id, self.worker, self.lease_s = jobs, job_id, worker, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"kb-lease-{job_id}", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with contextlib.suppress(KbError):  # a busy store: the next renewal comes well in time
                self.jobs.renew(self.job_id, self.worker, self.lease_s)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Runner:
    def __init__(self, work: IngestWork, jobs: JobStore, queue: JobQueue, settings: Settings) -> None:
        self.work = work
        self.jobs = jobs
        self.queue = queue
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._reclaimer: threading.Thread | None = None

    # -- jobs -----------------------------------------------------------------------------
    def run(self, job_id: str) -> None:
        """Runs a job or a part, if no other worker holds it and it is not finished."""
        lease_s = self.settings.queue.lease_s
        job = self.jobs.claim(job_id, self.worker, lease_s)
        if job is None:
            return
        if job.parent is not None:
            self._run_part(job)
            return
        with _Lease(self.jobs, job.id, self.worker, lease_s):
            state, report, error = _outcome(lambda: self._ingest(job))
        if self.jobs.finish(job.id, self.worker, state, report, error):
            self._notify(self.jobs.get(job.id), "job.done" if state == "done" else "job.failed")

    def _ingest(self, job: Job) -> IngestReport:
        """Plans the job (unless a worker that died had), then runs and awaits its parts."""
        from kb.ingest.parts import IngestSplit, merged, report_of

        started = job.started_at or time.time()
        if job.plan is None:
            split = self.work.split_job(job)
            parts = self.jobs.split(job.id, self.worker, [IngestScope.of(p) for p in split.parts], split.to_json())
            if parts is None:
                raise KbError(f"job {job.id} was taken over by another worker")
            for part in parts:
                self.queue.submit(part.id)
        else:
            split = IngestSplit.from_json(job.plan)
        parts = self._await_parts(job, split)
        report = merged([split.report, *(report_of(p.report or {}) for p in parts)])
        report = self.work.finish_job(job, split, report)
        report.seconds = round(time.time() - started, 3)
        return report

    def _await_parts(self, job: Job, split: IngestSplit) -> list[Job]:
        """Runs parts of the job while any is waiting, and tries failed ones again, until
        all are done; KbError when one failed `PART_RUNS` times."""
        progress = _Summed(self.jobs, job.id, self.worker, split)
        while True:
            parts = self.jobs.parts(job.id)
            progress.write(parts)
            if all(p.state == "done" for p in parts):
                progress.write(parts, force=True)
                return parts
            for part in parts:
                if part.state == "failed":
                    if part.runs >= PART_RUNS or part.report == _FINAL:
                        times = f" {part.runs} times" if part.runs > 1 else ""
                        raise KbError(f"part {_number(part)} of {len(parts)} failed{times}: {part.error}")
                    self.jobs.requeue(part.id)
                    self.queue.submit(part.id)
            waiting = [p for p in parts if p.state == "queued" or _lapsed(p)]
            if waiting:
                self.run(waiting[0].id)
            else:
                time.sleep(WAIT_S)

    def _run_part(self, part: Job) -> None:
        with _Lease(self.jobs, part.id, self.worker, self.settings.queue.lease_s):
            state, report, error = _outcome(lambda: self._part(part), final=ProviderError)
        self.jobs.finish(part.id, self.worker, state, report, error)

    def _part(self, part: Job) -> IngestReport:
        assert part.parent is not None
        if self.jobs.get(part.parent).state != "running":
            raise KbError(f"its job {part.parent} has ended")
        return self.work.run_part(part, _Progress(self.jobs, part.id, self.worker))

    # -- webhooks ---------------------------------------------------------------------------
    def _notify(self, job: Job, event: str) -> None:
        """Deliveries run as their own queued task: a receiver that is down never holds up
        the job, which is already recorded as finished."""
        if not any(event in hook.events for hook in self.settings.webhooks) and not job.callback_url:
            return
        try:
            self.queue.submit_delivery(job.id, event)
        except Exception as exc:  # a delivery that cannot even be queued is recorded; the job stands
            self.jobs.add_delivery(job.id, {"event": event, "delivered": False,
                                            "error": f"could not be queued ({exc})", "attempts": []})  # fmt: skip

    def deliver(self, job_id: str, event: str) -> None:
        from kb.jobs import webhooks

        job = self.jobs.get(job_id)
        for delivery in webhooks.notify(self.settings, event, job.to_json(), job.callback_url):
            self.jobs.add_delivery(job_id, delivery.to_json())

    # -- jobs whose worker died ---------------------------------------------------------------
    def reclaim(self) -> list[str]:
        """Submits again every running job whose lease ran out."""
        expired = self.jobs.expired()
        for job_id in expired:
            self.queue.submit(job_id)
        return expired

    def start_reclaimer(self) -> None:
        def loop() -> None:
            while True:
                with contextlib.suppress(KbError):  # the store or queue is down for now: next round
                    self.reclaim()
                if self._stop.wait(self.settings.queue.lease_s / 2):
                    return

        self._reclaimer = threading.Thread(target=loop, name="kb-reclaimer", daemon=True)
        self._reclaimer.start()

    def stop(self) -> None:
        self._stop.set()
        if self._reclaimer is not None:
            self._reclaimer.join(timeout=5)
