"""The job store on both backends (tests/backends.py): the records, and the leases that make
sure one worker at a time runs a job."""

from __future__ import annotations

import time

import pytest

from kb.errors import Conflict, JobNotFound, StoreError
from kb.options import IngestScope
from tests.backends import together

SCOPE = IngestScope.of(["/data"])


def test_a_job_is_created_queued_and_read_back_by_another_instance(backend):
    jobs = backend.jobs()
    job = jobs.create("bees", "ingest", IngestScope.of(["/data/notes"]))
    assert job.id.startswith("job_") and job.state == "queued" and job.created_at == pytest.approx(time.time(), abs=5)
    got = backend.jobs().get(job.id)
    assert got == job  # every field, None and empty ones too
    assert got.to_json()["started_at"] is None and got.progress == {} and got.deliveries == []


def test_unknown_jobs(backend):
    jobs = backend.jobs()
    with pytest.raises(JobNotFound, match="no job 'job_nope'"):
        jobs.get("job_nope")
    with pytest.raises(JobNotFound, match="no job 'job_nope'"):
        jobs.requeue("job_nope")
    assert jobs.claim("job_nope", "w1", 60) is None
    assert jobs.renew("job_nope", "w1", 60) is False
    assert jobs.finish("job_nope", "w1", "done", None, None) is False
    jobs.progress("job_nope", "w1", {"files_done": 1})
    jobs.add_delivery("job_nope", {"event": "job.done"})
    with pytest.raises(JobNotFound):
        jobs.get("job_nope")  # none of those created it


def test_a_job_runs_through_claim_progress_and_finish(backend):
    jobs = backend.jobs()
    job = jobs.create("bees", "ingest", IngestScope.of(["/x"]))
    claimed = jobs.claim(job.id, "host:1", 60)
    assert claimed is not None and claimed.state == "running" and claimed.worker == "host:1" and claimed.runs == 1
    assert claimed.lease_until == pytest.approx(time.time() + 60, abs=5)
    assert claimed.started_at is not None and claimed.started_at <= claimed.lease_until
    jobs.progress(job.id, "host:1", {"files_total": 3, "files_done": 1})
    assert jobs.renew(job.id, "host:1", 120)
    assert jobs.get(job.id).lease_until == pytest.approx(time.time() + 120, abs=5)
    assert jobs.finish(job.id, "host:1", "done", {"added": 3, "chunks": 12}, None)
    done = backend.jobs().get(job.id)
    assert (done.state, done.report, done.error, done.lease_until) == ("done", {"added": 3, "chunks": 12}, None, None)
    assert done.progress == {"files_total": 3, "files_done": 1} and done.finished_at is not None
    assert done.worker == "host:1" and jobs.expired() == []
    assert jobs.claim(job.id, "host:2", 60) is None  # finished


def test_only_the_worker_holding_a_job_writes_to_it(backend):
    jobs = backend.jobs()
    job = jobs.create("bees", "ingest", SCOPE)
    jobs.claim(job.id, "w1", 60)
    assert jobs.claim(job.id, "w2", 60) is None  # the lease is live
    assert jobs.renew(job.id, "w2", 60) is False
    jobs.progress(job.id, "w2", {"files_done": 99})
    assert jobs.finish(job.id, "w2", "failed", None, "not mine") is False
    held = jobs.get(job.id)
    assert (held.state, held.worker, held.progress, held.error) == ("running", "w1", {}, None)


def _race_to_claim(stores: list, job_id: str) -> list[str]:
    """Every store claims the job at once, each for its own worker; the workers that got it."""
    winners: list[str] = []

    def claim(store, worker: str) -> None:
        if store.claim(job_id, worker, 60) is not None:
            winners.append(worker)

    together(claim, [(s, f"w{n}") for n, s in enumerate(stores)])
    return winners


def test_workers_racing_to_claim_a_job_never_both_get_it(backend):
    stores = [backend.jobs() for _ in range(6)]  # one each, as workers on several machines
    for _ in range(5):
        job = stores[0].create("bees", "ingest", SCOPE)
        winners = _race_to_claim(stores, job.id)
        assert len(winners) == 1
        assert stores[1].get(job.id).worker == winners[0] and stores[1].get(job.id).runs == 1


def test_a_job_whose_lease_ran_out_is_listed_and_another_worker_takes_it_over(backend):
    jobs = backend.jobs()
    job = jobs.create("bees", "ingest", SCOPE)
    other = jobs.create("bees", "ingest", SCOPE)
    jobs.claim(job.id, "dead", 1.5)
    jobs.claim(other.id, "alive", 60)
    assert jobs.expired() == []  # within its lease
    deadline = time.monotonic() + 30  # then the lease runs out on the store's clock, whenever that is here
    while not (expired := backend.jobs().expired()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert expired == [job.id]
    taken = jobs.claim(job.id, "heir", 60)
    assert taken is not None and (taken.worker, taken.runs, taken.started_at) == (
        "heir",
        2,
        jobs.get(job.id).started_at,
    )
    assert jobs.expired() == []
    assert jobs.renew(job.id, "dead", 60) is False  # the dead worker, back, cannot write
    assert jobs.finish(job.id, "dead", "done", {}, None) is False
    assert jobs.finish(job.id, "heir", "failed", None, "disk full")
    assert jobs.get(job.id).error == "disk full"


def test_retry_requeues_a_finished_job_only(backend):
    jobs = backend.jobs()
    job = jobs.create("bees", "ingest", SCOPE)
    with pytest.raises(Conflict, match="is queued"):
        jobs.requeue(job.id)
    jobs.claim(job.id, "w1", 60)
    jobs.progress(job.id, "w1", {"files_done": 2})
    with pytest.raises(Conflict, match="is running"):
        jobs.requeue(job.id)
    jobs.finish(job.id, "w1", "failed", None, "boom")
    again = jobs.requeue(job.id)
    assert (again.state, again.error, again.report, again.finished_at, again.progress) == (
        "queued",
        None,
        None,
        None,
        {},
    )
    assert again.runs == 1 and again.started_at is not None
    rerun = jobs.claim(job.id, "w2", 60)
    assert rerun is not None and rerun.runs == 2


def test_deliveries_are_appended_in_order(backend):
    jobs = backend.jobs()
    job = jobs.create("bees", "ingest", SCOPE)
    first = {"event": "job.done", "url": "http://127.0.0.1:9/hook", "delivered": False, "attempts": [{"status": 500}]}
    second = {"event": "job.done", "url": "http://127.0.0.1:9/hook", "delivered": True, "attempts": []}
    jobs.add_delivery(job.id, first)
    backend.jobs().add_delivery(job.id, second)
    assert jobs.get(job.id).deliveries == [first, second]


def test_recent_lists_the_newest_first_by_kb_and_state(backend):
    jobs = backend.jobs()
    made = []
    for i in range(7):
        made.append(jobs.create("bees" if i % 2 == 0 else "wasps", "ingest", IngestScope.of([f"/n{i}"])))
        time.sleep(0.002)
    jobs.claim(made[2].id, "w", 60)
    assert [int(str(j.scope.paths[0])[2:]) for j in jobs.recent()] == [6, 5, 4, 3, 2, 1, 0]
    assert [int(str(j.scope.paths[0])[2:]) for j in jobs.recent(limit=3)] == [6, 5, 4]
    assert [int(str(j.scope.paths[0])[2:]) for j in jobs.recent(kb="bees")] == [6, 4, 2, 0]
    assert [int(str(j.scope.paths[0])[2:]) for j in jobs.recent(kb="bees", state="queued", limit=2)] == [6, 4]
    assert [int(str(j.scope.paths[0])[2:]) for j in jobs.recent(state="running")] == [2]
    assert jobs.recent(kb="nobody") == []


def test_redis_recent_pages_through_more_jobs_than_one_read(redis_backend):
    jobs = redis_backend.jobs()
    for i in range(250):
        jobs.create("bees" if i < 5 else "wasps", "ingest", IngestScope.of([f"/n{i}"]))
    assert [int(str(j.scope.paths[0])[2:]) for j in jobs.recent(kb="bees", limit=10)] == [4, 3, 2, 1, 0]
    assert len(jobs.recent(limit=240)) == 240


def test_redis_down_is_a_store_error_naming_the_server_then_works_again(redis_backend, redis_outage, redis_server):
    jobs = redis_backend.jobs()
    job = jobs.create("bees", "ingest", SCOPE)
    redis_outage.stop()
    calls = (lambda: jobs.create("bees", "ingest", SCOPE), lambda: jobs.get(job.id), lambda: jobs.claim(job.id, "w", 60),
             jobs.expired, lambda: jobs.recent())  # fmt: skip
    for call in calls:
        with pytest.raises(StoreError, match=f"shared state at {redis_server.url} is unreachable"):
            call()
    redis_outage.start()
    claimed = jobs.claim(job.id, "w", 60)  # same client; the scripts are loaded again
    assert claimed is not None and claimed.state == "running"


def test_a_split_job_has_parts_that_any_worker_claims_out_of_the_lists_and_gone_on_retry(backend):
    jobs = backend.jobs()
    job = jobs.create("bees", "ingest", SCOPE)
    parts = [IngestScope.of(["/data/a", "/data/b"]), IngestScope.of(["/data/c"])]
    assert jobs.split(job.id, "w1", parts, {"parts": 2}) is None  # not claimed: nobody holds it
    jobs.claim(job.id, "w1", 60)
    assert jobs.split(job.id, "w2", parts, {"parts": 2}) is None  # only its holder splits it
    made = jobs.split(job.id, "w1", parts, {"parts": 2, "removals": ["/data/gone"]})
    assert made is not None and [p.id for p in made] == [f"{job.id}.00000", f"{job.id}.00001"]
    assert [p.scope for p in made] == parts and {(p.kb, p.kind, p.state, p.parent) for p in made} == {
        ("bees", "ingest-part", "queued", job.id)
    }
    other = backend.jobs()
    assert other.get(job.id).plan == {"parts": 2, "removals": ["/data/gone"]}
    assert [j.id for j in other.recent()] == [job.id]  # the job lists show jobs, not their parts
    part = other.claim(made[1].id, "w2", 60)
    assert part is not None and part.worker == "w2" and part.parent == job.id
    assert other.finish(part.id, "w2", "done", {"added": 1}, None)
    assert [(p.state, p.report) for p in jobs.parts(job.id)] == [("queued", None), ("done", {"added": 1})]
    jobs.finish(job.id, "w1", "failed", None, "a part failed")
    again = jobs.requeue(job.id)
    assert again.plan is None and jobs.parts(job.id) == []  # the retry plans afresh
    with pytest.raises(JobNotFound):
        jobs.get(made[0].id)
