"""One ingest job shared by several `kb worker` processes of one KB_HOME (local mode: the
SQLite queue and job store, Chroma under KB_HOME), real processes throughout. The fake
embeddings service (the network seam) or the hash embedder (the model seam) stands in for
the model."""

from __future__ import annotations

import signal
import sqlite3
import time

from tests.conftest import run_kb, write_config
from tests.fake_embeddings import FakeEmbeddings
from tests.reliability.kbstate import manifest_records
from tests.service.processes import Worker, wait_for

HASH = {"KB_MODEL": "hash"}


def _notes(folder, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        body = "\n\n".join(f"Note {i} paragraph {j}: frames, brood, stores and queen cells in hive {i}." * 3
                           for j in range(6))  # fmt: skip
        (folder / f"n{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n")


def _job(home, job_id: str, env: dict[str, str]) -> dict:
    return run_kb("jobs", "show", job_id, "--json", env={**env, "KB_HOME": str(home)}).json()


def _finished(home, job_id: str, env: dict[str, str], timeout: float = 120) -> dict:
    return wait_for(lambda: (j := _job(home, job_id, env))["state"] in ("done", "failed") and j, timeout,
                    f"job {job_id} to finish")  # fmt: skip


def _parts(home, job_id: str) -> list[dict]:
    with sqlite3.connect(home / "jobs.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM jobs WHERE parent = ? ORDER BY id", (job_id,))]


def _enqueue(home, docs, env: dict[str, str]) -> str:
    queued = run_kb("ingest", "--background", docs, "--json", env={**env, "KB_HOME": str(home)})
    assert queued.code == 0, queued.err
    return queued.json()["id"]


def _same_as_a_foreground_ingest(tmp_path, home, docs, env: dict[str, str]) -> None:
    reference = tmp_path / "reference"
    write_config(reference, (home / "config.toml").read_text() if (home / "config.toml").exists() else "")
    assert run_kb("ingest", docs, env={**env, "KB_HOME": str(reference)}).code == 0
    expected = {s: r.chunk_ids for s, r in manifest_records(reference).items()}
    assert {s: r.chunk_ids for s, r in manifest_records(home).items()} == expected


def test_two_workers_embed_parts_of_one_job_at_once_fake_embeddings_service(tmp_path):
    """Each worker has one job slot and sends one request at a time, and the fake service
    holds the first request until a second arrives: only two processes embedding parts of
    the one job side by side, outside the write lock, bring two requests together."""
    fake = FakeEmbeddings().start()
    fake.meet = 2
    home, docs = tmp_path / "home", tmp_path / "docs"
    _notes(docs, 60)
    write_config(home, f'[embedding]\nkind = "openai"\nbase_url = "{fake.url}"\nmodel = "fake"\n'
                       'batch_size = 16\nmax_concurrency = 1\n')  # fmt: skip
    env = {"KB_QUEUE_WORKERS": "1", "KB_QUEUE_PART_FILES": "6"}
    workers = [Worker(home, env, f"worker-{n}") for n in (1, 2)]
    try:
        for w in workers:
            wait_for(lambda w=w: "Ctrl-C stops" in w.output(), 60, f"{w} to start")
        job_id = _enqueue(home, docs, env)
        job = _finished(home, job_id, env)
        assert fake.most_in_flight == 2, "the two workers never embedded at the same time"
        _same_as_a_foreground_ingest(tmp_path, home, docs, {})
    finally:
        for w in workers:
            w.stop()
        fake.stop()
    assert job["state"] == "done", job
    assert job["report"]["added"] == 60 and not job["report"]["failed"], job["report"]
    assert job["progress"]["parts_total"] == 10 and job["progress"]["parts_done"] == 10
    assert job["progress"]["files_done"] == 60 and job["progress"]["files_total"] == 60
    assert len(job["progress"]["workers"]) == 2, job["progress"]
    shown = run_kb("jobs", "show", job_id, env={**env, "KB_HOME": str(home)})
    assert "60/60 files" in shown.out and "10/10 parts by 2 workers" in shown.out, shown.out


def test_a_worker_killed_holding_a_part_leaves_it_to_the_other_and_the_kb_is_whole_hash_embedder(tmp_path):
    home, docs = tmp_path / "home", tmp_path / "docs"
    _notes(docs, 240)
    env = {**HASH, "KB_QUEUE_WORKERS": "1", "KB_QUEUE_PART_FILES": "4", "KB_QUEUE_LEASE_S": "2"}
    workers = [Worker(home, env, f"worker-{n}") for n in (1, 2)]
    try:
        for w in workers:
            wait_for(lambda w=w: "Ctrl-C stops" in w.output(), 60, f"{w} to start")
        job_id = _enqueue(home, docs, env)

        def a_part_held_by_the_other_worker():
            coordinator = _job(home, job_id, env).get("worker") or ""
            parts = _parts(home, job_id)
            if not any(p["state"] == "done" for p in parts):
                return None
            held = [p["worker"] for p in parts if p["state"] == "running" and p["worker"] != coordinator]
            return next((w for w in workers for h in held if h.endswith(f":{w.pid}")), None)

        victim = wait_for(a_part_held_by_the_other_worker, 90, "the other worker to hold a part", every=0.02)
        killed_at = time.time()
        victim.stop(signal.SIGKILL)
        job = _finished(home, job_id, env)
    finally:
        for w in workers:
            w.stop()
    assert job["state"] == "done", job
    assert job["report"]["added"] == 240 and job["report"]["chunks_added"] > 0, job["report"]
    retried = [p for p in _parts(home, job_id) if p["runs"] > 1]
    assert retried and all(p["state"] == "done" for p in _parts(home, job_id))
    assert all(p["started_at"] < killed_at for p in retried)
    _same_as_a_foreground_ingest(tmp_path, home, docs, HASH)


def test_a_part_failing_on_the_fake_embeddings_service_fails_the_job_at_once_and_a_retry_skips_what_was_committed(
    tmp_path,
):
    """The fake embeddings service (the network seam) answers the first parts, then 500. The
    embedder has retried already (here: max_retries = 0), so the part is not tried again:
    more tries would only open the service's breaker."""
    fake = FakeEmbeddings().start()
    home, docs = tmp_path / "home", tmp_path / "docs"
    _notes(docs, 12)
    write_config(home, f'[embedding]\nkind = "openai"\nbase_url = "{fake.url}"\nmodel = "fake"\n'
                       'batch_size = 64\nmax_concurrency = 1\nmax_retries = 0\n')  # fmt: skip
    env = {"KB_QUEUE_WORKERS": "1", "KB_QUEUE_PART_FILES": "4"}
    fake.script = ["ok", "ok"]  # two parts of four files, one request each
    fake.mode = "500"
    worker = Worker(home, env, "worker")
    try:
        job_id = _enqueue(home, docs, env)
        failed = _finished(home, job_id, env)
        assert failed["state"] == "failed", failed
        assert failed["error"].startswith("part 3 of 3 failed: ") and fake.url in failed["error"], failed
        assert "\n" not in failed["error"]
        assert fake.hits == 3  # one request a part: the third part was not sent again
        kept = run_kb("list", "--json", env={"KB_HOME": str(home)})
        assert kept.code == 0 and len(kept.out.strip().splitlines()) == 8, kept.out
        fake.mode = "ok"
        assert run_kb("jobs", "retry", job_id, env={**env, "KB_HOME": str(home)}).code == 0
        done = _finished(home, job_id, env)
    finally:
        worker.stop()
        fake.stop()
    assert done["state"] == "done", done
    assert done["report"]["added"] == 4 and done["report"]["unchanged"] == 8, done["report"]
    assert done["progress"]["parts_total"] == 1
