"""How the runner treats a part that fails: the real Library (hash embedder), SQLite job
store and huey queue, with failures injected at the runner's IngestWork seam, where the core
raises them; one Runner runs the job and its parts itself, in this process."""

from __future__ import annotations

import pytest

from kb.config import load_settings
from kb.errors import KbError, ProviderUnavailable, StoreError
from kb.jobs.runner import PART_RUNS, Runner
from kb.library import Library


class InjectedFailures:
    """The Library as the runner sees it, whose run_part raises the given errors first."""

    def __init__(self, library: Library, failures: list[KbError]) -> None:
        self.library, self.failures = library, failures

    def split_job(self, job):  # type: ignore[no-untyped-def]
        return self.library.split_job(job)

    def run_part(self, part, progress):  # type: ignore[no-untyped-def]
        if self.failures:
            raise self.failures.pop(0)
        return self.library.run_part(part, progress)

    def finish_job(self, job, split, report):  # type: ignore[no-untyped-def]
        return self.library.finish_job(job, split, report)


@pytest.fixture
def library(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"n{i}.md").write_text(f"# Note {i}\n\nFrames, brood and stores in hive {i}.\n")
    lib = Library(load_settings(home=str(tmp_path / "home"), model="hash"))
    yield lib, docs
    lib.close()


def _run(lib: Library, docs, failures: list[KbError]):  # type: ignore[no-untyped-def]
    runner = Runner(InjectedFailures(lib, failures), lib.home.jobs, lib.home.queue, lib.settings)
    job = lib.enqueue_ingest(None, [docs])
    runner.run(job.id)
    return lib.job(job.id), lib.home.jobs.parts(job.id)


def test_a_part_that_fails_on_the_store_is_tried_again_and_the_job_completes_injected_failures(library):
    lib, docs = library
    job, parts = _run(lib, docs, [StoreError("the store is busy"), StoreError("the store is busy")])
    assert job.state == "done", job.error
    assert job.report["added"] == 3 and [p.runs for p in parts] == [PART_RUNS]


def test_a_part_failing_every_try_fails_the_job_with_its_reason_injected_failures(library):
    lib, docs = library
    job, parts = _run(lib, docs, [StoreError("the store is busy")] * PART_RUNS)
    assert job.state == "failed" and job.error == f"part 1 of 1 failed {PART_RUNS} times: the store is busy"
    assert [p.runs for p in parts] == [PART_RUNS] and lib.kb().documents() == []


def test_a_part_failing_on_its_embedding_service_is_not_tried_again_injected_failures(library):
    """The embedder retried with backoff before raising; more tries would only open the
    service's breaker."""
    lib, docs = library
    job, parts = _run(lib, docs, [ProviderUnavailable("embeddings http://127.0.0.1:9/v1: server error 500")])
    assert (
        job.state == "failed" and job.error == "part 1 of 1 failed: embeddings http://127.0.0.1:9/v1: server error 500"
    )
    assert [p.runs for p in parts] == [1]
    again = lib.retry_job(job.id)
    Runner(lib, lib.home.jobs, lib.home.queue, lib.settings).run(again.id)
    assert lib.job(job.id).state == "done" and lib.job(job.id).report["added"] == 3
