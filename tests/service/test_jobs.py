"""Background ingestion through the real queue: POST /v1/ingest → 202 → job done → signed
webhook; uploads; path escapes refused; a receiver that is down; a worker killed mid-job
whose job finishes on another worker (real kb serve and kb worker processes; hash
embedder; huey on SQLite)."""

from __future__ import annotations

import base64
import os
import shutil
import signal

import pytest

from tests.conftest import SAMPLE, run_kb, write_config
from tests.jobs.receiver import Receiver, free_port
from tests.reliability.kbstate import snapshot
from tests.service.processes import Server, Worker, wait_for

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
HASH = {"KB_MODEL": "hash", "KB_TEST_HOOK_SECRET": SECRET}


def _job(http, job_id: str) -> dict:
    res = http.get(f"/v1/jobs/{job_id}")
    assert res.status_code == 200, res.text
    return res.json()


def _finished(http, job_id: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (j := _job(http, job_id))["state"] in ("done", "failed") and j, timeout, "the job")


@pytest.fixture
def receiver():
    r = Receiver(SECRET).start()
    yield r
    r.stop()


@pytest.fixture
def setup(tmp_path, receiver):
    home, root = tmp_path / "home", tmp_path / "docs"
    shutil.copytree(SAMPLE, root / "sample")
    write_config(home, f"""
webhooks_allow_hosts = ["127.0.0.1"]
webhook_retry_for_s = 3
webhook_callback_secret_env = "KB_TEST_HOOK_SECRET"

[[webhooks]]
url = "{receiver.url}"
secret_env = "KB_TEST_HOOK_SECRET"
""")  # fmt: skip
    env = {**HASH, "KB_SERVE_ROOTS": str(root)}
    server = Server(home, env, ["--worker"]).wait_ready()
    yield server, home, root, receiver
    server.stop()


def test_ingest_is_accepted_at_once_and_done_in_the_background_with_a_signed_webhook(setup):
    server, home, root, receiver = setup
    with server.client() as http:
        res = http.post("/v1/ingest", json={"paths": [str(root / "sample")], "kb": "bees"})
        assert res.status_code == 202, res.text
        job_id = res.json()["job_id"]
        assert res.headers["location"] == f"/v1/jobs/{job_id}"
        job = _finished(http, job_id)
        assert job["state"] == "done", job
        assert job["report"]["added"] == 11 and job["progress"]["files_done"] == 11
        delivered = wait_for(lambda: _job(http, job_id)["deliveries"], 30, "the webhook delivery")
        assert delivered[0]["delivered"] is True and delivered[0]["event"] == "job.done"
        [hook] = receiver.received
        assert hook.error is None, hook.error  # the signature verifies with standardwebhooks
        assert hook.payload["type"] == "job.done"
        assert {k: v for k, v in hook.payload["data"].items() if k != "deliveries"} == {
            k: v for k, v in job.items() if k != "deliveries"
        }
        hits = http.post("/v1/search", json={"query": "queen eggs", "kb": "bees"}).json()["hits"]
        assert hits and hits[0]["source"].startswith(str(root / "sample"))
        listed = http.get("/v1/jobs", params={"kb": "bees"}).json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]
    cli = run_kb("--kb", "bees", "jobs", "show", job_id, "--json", env={**HASH, "KB_HOME": str(home)})
    assert cli.json()["state"] == "done"


def test_paths_outside_the_roots_are_refused(setup, tmp_path):
    server, _, root, receiver = setup
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "keys.md").write_text("# Keys\n\nnot for the server\n")
    (root / "escape").symlink_to(outside)
    with server.client() as http:
        for path in ("/etc", str(root / ".." / "secret"), str(root / "escape"), str(root / "escape" / "keys.md")):
            res = http.post("/v1/ingest", json={"paths": [path]})
            assert res.status_code == 403, (path, res.text)
            assert res.json()["error"]["kind"] == "forbidden" and "serve.roots" in res.json()["error"]["message"]
        # the tests allow loopback receivers...
        res = http.post("/v1/ingest", json={"paths": [str(root / "sample")], "callback_url": receiver.url + "/cb"})
        assert res.status_code == 202, res.text
        assert _finished(http, res.json()["job_id"])["state"] == "done"
        wait_for(lambda: len(receiver.received) >= 2, 30, "the webhook and the signed callback")
    assert sorted(r.path for r in receiver.received) == ["/hooks/kb", "/hooks/kb/cb"]
    assert all(r.error is None for r in receiver.received)
    strict = Server(tmp_path / "strict-home", {**HASH, "KB_SERVE_ROOTS": str(root)}).wait_ready()
    try:
        with strict.client() as http:  # ...a server that does not refuses a link-local callback
            res = http.post(
                "/v1/ingest", json={"paths": [str(root / "sample")], "callback_url": "http://169.254.169.254/x"}
            )
            assert res.status_code == 400 and res.json()["error"]["kind"] == "webhook_error"
            assert "169.254.169.254" in res.json()["error"]["message"]
            assert http.get("/v1/jobs").json()["jobs"] == []  # refused before anything was queued
    finally:
        strict.stop()


def test_uploads_are_stored_then_ingested_and_a_callback_is_signed(setup):
    server, home, _, receiver = setup
    files = [
        ("files", ("field notes.md", b"# Field notes\n\nThe propolis trap filled in nine days.\n", "text/markdown")),
        ("files", ("../../evil.txt", b"A name that tries to leave the upload folder.\n", "text/plain")),
    ]
    with server.client() as http:
        res = http.post("/v1/ingest", files=files, data={"kb": "uploads", "callback_url": receiver.url + "/cb"})
        assert res.status_code == 202, res.text
        job = _finished(http, res.json()["job_id"])
        assert job["state"] == "done" and job["report"]["added"] == 2
        folder = job["params"]["paths"][0]
        assert folder.startswith(str(home / "uploads")) and sorted(os.listdir(folder)) == ["evil.txt", "field notes.md"]
        hits = http.post("/v1/search", json={"query": "propolis trap", "kb": "uploads"}).json()["hits"]
        assert hits[0]["source"] == os.path.join(folder, "field notes.md")
        wait_for(lambda: len(receiver.received) >= 2, 30, "the webhook and the callback")
    assert sorted(r.path for r in receiver.received) == ["/hooks/kb", "/hooks/kb/cb"]
    assert all(r.error is None for r in receiver.received)
    with server.client() as http:
        empty = http.post("/v1/ingest", files=[("other", ("x.md", b"x", "text/plain"))], data={"kb": "uploads"})
        assert empty.status_code == 400 and "no files" in empty.json()["error"]["message"]


def test_a_receiver_that_is_down_never_fails_the_job(tmp_path):
    home, docs = tmp_path / "home", tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    down = f"http://127.0.0.1:{free_port()}/hook"
    write_config(home, f'webhooks_allow_hosts = ["127.0.0.0/8"]\nwebhook_retry_for_s = 2\n\n[[webhooks]]\nurl = "{down}"\n'
                       'secret_env = "KB_TEST_HOOK_SECRET"\n')  # fmt: skip
    server = Server(home, {**HASH, "KB_SERVE_ROOTS": str(docs)}, ["--worker"]).wait_ready()
    try:
        with server.client() as http:
            job_id = http.post("/v1/ingest", json={"paths": [str(docs)]}).json()["job_id"]
            job = _finished(http, job_id)
            assert job["state"] == "done"
            [delivery] = wait_for(lambda: _job(http, job_id)["deliveries"], 30, "the failed delivery")
    finally:
        server.stop()
    assert delivery["delivered"] is False and len(delivery["attempts"]) >= 2
    assert delivery["error"].startswith("gave up after")
    shown = run_kb("jobs", "show", job_id, env={**HASH, "KB_HOME": str(home)})
    assert "not delivered" in shown.out


def test_a_worker_killed_mid_job_leaves_the_job_to_another_worker(tmp_path):
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    for i in range(300):
        body = "\n\n".join(f"Note {i} paragraph {j}: frames, brood, stores and queen cells in hive {i}." * 3
                           for j in range(6))  # fmt: skip
        (docs / f"n{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n")
    env = {**HASH, "KB_HOME": str(home), "KB_QUEUE_LEASE_S": "2", "KB_INGEST_BATCH": "4"}
    queued = run_kb("ingest", "--background", docs, "--json", env=env)
    assert queued.code == 0, queued.err
    job_id = queued.json()["id"]
    first = Worker(home, env, "worker-1")

    def progressed():
        job = run_kb("jobs", "show", job_id, "--json", env=env).json()
        done = job["progress"].get("files_done", 0)
        return job if job["state"] == "running" and 0 < done < 250 else None

    wait_for(progressed, 60, "the first worker to be part-way", every=0.05)
    first.stop(signal.SIGKILL)
    second = Worker(home, env, "worker-2")
    try:
        job = wait_for(lambda: (j := run_kb("jobs", "show", job_id, "--json", env=env).json())["state"] == "done" and j,
                       120, "the second worker to finish the job")  # fmt: skip
    finally:
        second.stop()
    assert job["runs"] == 2 and job["worker"].endswith(f":{second.pid}")
    reference = tmp_path / "reference"
    assert run_kb("ingest", docs, env={**HASH, "KB_HOME": str(reference)}).code == 0
    assert snapshot(home, docs) == snapshot(reference, docs)
    listed = run_kb("jobs", "--json", env=env).ndjson()
    assert [j["id"] for j in listed] == [job_id]
    retried = run_kb("jobs", "retry", job_id, "--json", env=env)
    assert retried.code == 0 and retried.json()["state"] == "queued"


def test_an_ingest_of_missing_paths_or_an_unsignable_callback_is_refused_before_anything_is_queued(setup, tmp_path):
    server, _, root, receiver = setup
    with server.client() as http:
        missing = http.post("/v1/ingest", json={"paths": [str(root / "not-there")]})
        assert missing.status_code == 400 and "not-there does not exist" in missing.json()["error"]["message"]
        before = http.get("/v1/jobs").json()["jobs"]
    strict = Server(tmp_path / "strict-home", {**HASH, "KB_SERVE_ROOTS": str(root),
                                               "KB_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1"}).wait_ready()  # fmt: skip
    try:
        with strict.client() as http:  # no webhook_callback_secret_env: a callback could not be signed
            res = http.post("/v1/ingest", json={"paths": [str(root / "sample")], "callback_url": receiver.url})
            assert res.status_code == 400 and "webhook_callback_secret_env" in res.json()["error"]["message"]
            assert http.get("/v1/jobs").json()["jobs"] == []
    finally:
        strict.stop()
    with server.client() as http:
        assert http.get("/v1/jobs").json()["jobs"] == before
