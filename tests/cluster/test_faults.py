"""Scale-out under faults, with real processes: `kb serve` and `kb worker` instances, each with
its own KB_HOME, sharing a real redis-server and a real `chroma run` on loopback. The hash
embedder stands in for the model (the model seam), so the tests measure kb, not the encoder."""

from __future__ import annotations

import itertools
import re
import signal

import pytest

from kb import KnowledgeBase
from kb.config import load_settings
from tests.conftest import SAMPLE, run_kb
from tests.servers import ChromaServer, RedisServer
from tests.service.processes import Server, Worker, wait_for

HASH = {"KB_MODEL": "hash"}


@pytest.fixture
def own_servers(tmp_path):
    """A redis-server and a Chroma server of this test's own: it stops and restarts them."""
    redis = RedisServer(tmp_path / "redis").start()
    chroma = ChromaServer(tmp_path / "chroma").start()
    yield redis, chroma
    redis.stop()
    chroma.stop()


def _env(redis_url: str, chroma_url: str, **more: str) -> dict[str, str]:
    return {**HASH, "KB_STATE_URL": redis_url, "KB_STORE_URL": chroma_url, **more}


def _notes(folder, count: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        body = "\n\n".join(f"Note {i} paragraph {j}: frames, brood, stores and queen cells in hive {i}." * 3
                           for j in range(6))  # fmt: skip
        (folder / f"n{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n")


def _shared_state(tmp_path, env: dict[str, str], kb: str = "default") -> tuple[dict[str, list[str]], set[str]]:
    """(source → chunk ids) as the shared manifest lists them, and the ids the Chroma server
    holds, read through a fresh instance."""
    import os

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        instance = KnowledgeBase(load_settings(home=str(tmp_path / "inspector"), kb=kb))
        try:
            instance.documents()  # syncs the mirror
            records = {r.source: r.chunk_ids for r in instance.access.manifest.all()}
            return records, instance.access.store.ids()
        finally:
            instance.close()
            instance.home.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_a_worker_killed_mid_job_leaves_the_job_to_the_other_worker(tmp_path, own_servers):
    redis, chroma = own_servers
    docs = tmp_path / "docs"
    _notes(docs, 300)
    # Parts of 4 files: 75 commits, so the job is still running when a `kb jobs show`
    # (a process start) sees it part-way, however loaded the machine. With parts of 32 it
    # could finish between two looks in a full test run.
    env = _env(redis.url, chroma.url, KB_QUEUE_LEASE_S="2", KB_INGEST_BATCH="4", KB_QUEUE_PART_FILES="4")
    producer = {**env, "KB_HOME": str(tmp_path / "producer")}
    queued = run_kb("ingest", "--background", docs, "--json", env=producer)
    assert queued.code == 0, queued.err
    job_id = queued.json()["id"]
    workers = [Worker(tmp_path / f"w{n}", env, f"worker-{n}") for n in (1, 2)]
    try:

        def part_way():
            job = run_kb("jobs", "show", job_id, "--json", env=producer).json()
            done = job["progress"].get("files_done", 0)
            return job if job["state"] == "running" and 0 < done < 250 else None

        job = wait_for(part_way, 90, "a worker to be part-way", every=0.05)
        holder = next(w for w in workers if job["worker"].endswith(f":{w.pid}"))
        holder.stop(signal.SIGKILL)
        other = next(w for w in workers if w is not holder)
        job = wait_for(lambda: (j := run_kb("jobs", "show", job_id, "--json", env=producer).json())["state"]
                       in ("done", "failed") and j, 120, "the other worker to finish the job")  # fmt: skip
    finally:
        for w in workers:
            w.stop()
    assert job["state"] == "done", job
    assert job["runs"] == 2 and job["worker"].endswith(f":{other.pid}")
    # Exactly the chunks of an uninterrupted run: same records, same ids in the store, no orphans.
    reference = tmp_path / "reference"
    assert run_kb("ingest", docs, env={**HASH, "KB_HOME": str(reference)}).code == 0
    from tests.reliability.kbstate import manifest_records

    expected = {s: r.chunk_ids for s, r in manifest_records(reference).items()}
    records, in_store = _shared_state(tmp_path, env)
    assert records == expected
    assert in_store == {i for ids in expected.values() for i in ids}


def test_two_workers_racing_for_jobs_on_one_kb_never_write_at_once(tmp_path, own_servers):
    redis, chroma = own_servers
    env = _env(redis.url, chroma.url, KB_INGEST_BATCH="8")
    producer = {**env, "KB_HOME": str(tmp_path / "producer")}
    jobs = []
    for part in range(4):
        _notes(tmp_path / "docs" / f"part{part}", 40, start=part * 40)
        queued = run_kb("ingest", "--background", tmp_path / "docs" / f"part{part}", "--json", env=producer)
        assert queued.code == 0, queued.err
        jobs.append(queued.json()["id"])
    workers = [Worker(tmp_path / f"w{n}", env, f"worker-{n}", debug=True) for n in (1, 2)]
    try:
        for job_id in jobs:
            wait_for(lambda j=job_id: run_kb("jobs", "show", j, "--json", env=producer).json()["state"] == "done",
                     120, f"job {job_id}")  # fmt: skip
    finally:
        for w in workers:
            w.stop()
    holds = []
    for w in workers:
        log = w.output()
        taken = [float(t) for t in re.findall(r"write lock on 'default' taken at ([0-9.]+)", log)]
        released = [float(t) for t in re.findall(r"write lock on 'default' released at ([0-9.]+)", log)]
        assert len(taken) == len(released)
        holds += list(zip(taken, released))
    assert len(holds) >= 4 and all(len(re.findall("taken at", w.output())) for w in workers), holds
    holds.sort()
    for (_, end), (start, _) in itertools.pairwise(holds):
        assert end <= start, f"two writers held the lock at once: {holds}"
    records, _ = _shared_state(tmp_path, env)
    assert len(records) == 160


@pytest.fixture
def serving(tmp_path, own_servers):
    """One kb serve instance on the test's own servers, over a KB ingested by another process."""
    redis, chroma = own_servers
    env = _env(redis.url, chroma.url)
    home = tmp_path / "a"
    assert run_kb("ingest", SAMPLE / "swarming.txt", env={**env, "KB_HOME": str(home)}).code == 0
    server = Server(home, env).wait_ready()
    yield server, redis, chroma
    server.stop()


def test_redis_restarted_instances_are_not_ready_then_recover_without_a_restart(serving):
    server, redis, _ = serving
    with server.client() as http:
        assert http.post("/v1/search", json={"query": "swarm"}).status_code == 200
        redis.stop()
        res = http.get("/readyz")
        assert res.status_code == 503
        assert "state" in res.json()["checks"] and "redis" in res.json()["checks"]["state"].lower()
        assert http.post("/v1/search", json={"query": "swarm", "k": 2}).status_code == 503
        redis.start()
        wait_for(lambda: http.get("/readyz").status_code == 200, 20, "readiness after Redis came back")
        res = http.post("/v1/search", json={"query": "when do bees swarm"})
        assert res.status_code == 200 and res.json()["hits"]


def test_chroma_server_stopped_gives_503_with_the_reason_then_recovers(serving):
    server, _, chroma = serving
    with server.client() as http:
        query = {"query": "when do bees swarm", "mode": "dense"}
        assert http.post("/v1/search", json=query).status_code == 200
        chroma.stop()
        res = http.post("/v1/search", json={**query, "query": "queen cells"})
        assert res.status_code == 503, res.text
        assert f"Chroma server at {chroma.url} is unreachable" in res.text
        assert http.get("/readyz").json()["checks"]["store"].startswith("the Chroma server")
        chroma.start()
        wait_for(lambda: http.get("/readyz").status_code == 200, 20, "readiness after Chroma came back")
        res = http.post("/v1/search", json={**query, "query": "queen cells"})
        assert res.status_code == 200 and res.json()["hits"]
