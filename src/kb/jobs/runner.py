"""Running jobs on a worker: claim with a lease, ingest, record, notify.

A worker claims a job by taking its lease in the job store and renews it every third of
`queue.lease_s` while the ingest runs. If the worker dies (kill -9, a lost machine), the
lease runs out and any other worker's reclaimer submits the job again; the ingest pipeline
is crash-safe and idempotent, so the rerun skips what the dead worker committed and ends
with exactly the chunks of an uninterrupted run. Jobs of one knowledge base wait for its
write lock, so they never write at once, on one machine or several.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kb.config import Settings
from kb.errors import KbError
from kb.options import JobState

if TYPE_CHECKING:
    from kb.ingest.pipeline import IngestReport, Progress
    from kb.jobs.queue import JobQueue
    from kb.jobs.store import Job, JobStore

PROGRESS_EVERY_S = 0.5
Ingest = Callable[["Job", "Progress"], "IngestReport"]


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
    def __init__(self, ingest: Ingest, jobs: JobStore, queue: JobQueue, settings: Settings) -> None:
        self.ingest = ingest
        self.jobs = jobs
        self.queue = queue
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._reclaimer: threading.Thread | None = None

    # -- jobs -----------------------------------------------------------------------------
    def run(self, job_id: str) -> None:
        lease_s = self.settings.queue.lease_s
        job = self.jobs.claim(job_id, self.worker, lease_s)
        if job is None:
            return  # another worker holds it, or it is finished
        with _Lease(self.jobs, job.id, self.worker, lease_s):
            state, report, error = self._ingest(job)
        if self.jobs.finish(job.id, self.worker, state, report, error):
            self._notify(self.jobs.get(job.id), "job.done" if state == "done" else "job.failed")

    def _ingest(self, job: Job) -> tuple[JobState, dict | None, str | None]:
        try:
            report = self.ingest(job, _Progress(self.jobs, job.id, self.worker))
        except KbError as exc:
            return "failed", None, str(exc)
        except Exception as exc:  # a bug must fail the job, not leave it running forever
            return "failed", None, f"internal error ({type(exc).__name__}: {exc})"
        return "done", report.to_json(), None

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
