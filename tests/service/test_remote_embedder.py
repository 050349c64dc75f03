"""One kb embeds for another: a real `kb serve` (hash embedder at the model seam) is the
`[embedding] kind = "openai"` service of a second KB_HOME, in-process and as another
`kb serve`. Its vectors are the ones a local embedder would make, and when it goes away
the other's searches fail with 503 naming it."""

from __future__ import annotations

import shutil

import pytest

from kb import KnowledgeBase
from kb.config import load_settings
from tests.conftest import SAMPLE, write_config
from tests.service.processes import Server


@pytest.fixture
def embedding_server(tmp_path):
    home = tmp_path / "embedder-home"
    home.mkdir()
    server = Server(home, {"KB_MODEL": "hash"}).wait_ready()
    yield server
    server.stop()


def _remote_config(url: str) -> str:
    return f'[embedding]\nkind = "openai"\nbase_url = "{url}/v1"\nmodel = "hash"\nbatch_size = 16\nmax_retries = 0\n'


def test_kb_serve_embeds_for_another_kb(tmp_path, kb_home, embedding_server):
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus)
    write_config(kb_home, _remote_config(embedding_server.url))
    remote = KnowledgeBase(load_settings())
    assert not remote.ingest([corpus]).failed
    local = KnowledgeBase(load_settings(home=str(tmp_path / "local-home"), model="hash"))
    local.ingest([corpus])

    for query in ("how many eggs does a queen lay", "oxalic acid treatment for varroa"):
        theirs, ours = local.search(query, k=4), remote.search(query, k=4)
        assert [h.chunk_id for h in ours] == [h.chunk_id for h in theirs]
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)
    assert remote.info().model == "openai:hash"

    # the same KB_HOME served: its searches go through the first server
    served = Server(kb_home, {"KB_MODEL": ""}).wait_ready()
    try:
        with served.client() as http:
            found = http.post("/v1/search", json={"query": "winter stores of honey", "k": 3})
            assert found.status_code == 200
            assert [h["chunk_id"] for h in found.json()["hits"]] == [
                h.chunk_id for h in remote.search("winter stores of honey", k=3)
            ]
            embedding_server.stop()
            down = http.post("/v1/search", json={"query": "a question never asked before", "k": 3})
            assert down.status_code == 503
            assert embedding_server.url in down.json()["error"]["message"]
            assert http.get("/readyz").status_code == 200  # keyword search, jobs and the rest still work
            keyword = http.post("/v1/search", json={"query": "queen", "k": 1, "mode": "keyword"})
            assert keyword.status_code == 200 and keyword.json()["hits"]
    finally:
        served.stop()


def test_a_background_ingest_fails_naming_the_fake_embeddings_service_and_a_retry_completes(tmp_path):
    """A job whose embedding service is down fails with its reason (one line naming the
    service); once the service is back, the job's retry ingests everything."""
    from tests.fake_embeddings import FakeEmbeddings
    from tests.service.test_jobs import _finished

    fake = FakeEmbeddings().start()
    home, docs = tmp_path / "home", tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    write_config(home, _remote_config(fake.url.removesuffix("/v1")).replace('model = "hash"', 'model = "fake"'))
    fake.mode = "500"
    server = Server(home, {"KB_SERVE_ROOTS": str(docs)}, ["--worker"]).wait_ready()
    try:
        with server.client() as http:
            job_id = http.post("/v1/ingest", json={"paths": [str(docs)]}).json()["job_id"]
            failed = _finished(http, job_id)
            assert failed["state"] == "failed" and fake.url in failed["error"], failed
            assert "\n" not in failed["error"] and "Traceback" not in failed["error"]
            fake.mode = "ok"
            assert http.post(f"/v1/jobs/{job_id}/retry").status_code == 202
            done = _finished(http, job_id)
            assert done["state"] == "done" and not done["report"]["failed"], done
            hits = http.post("/v1/search", json={"query": "queen eggs", "k": 1}).json()["hits"]
            assert hits
    finally:
        server.stop()
        fake.stop()
