"""Search filters over HTTP, against a real `kb serve`: the same JSON as the CLI, and bad
filters refused with the HTTP error a client can act on (hash embedder at the model seam)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SAMPLE, run_kb
from tests.service.processes import Server

HASH = {"KB_MODEL": "hash"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    home, corpus = root / "home", root / "corpus"
    shutil.copytree(SAMPLE, corpus)
    assert run_kb("ingest", corpus, env={**HASH, "KB_HOME": str(home)}).code == 0
    server = Server(home, HASH).wait_ready()
    yield server, home, corpus
    assert server.stop() in (0, -15), server.output()[-2000:]


def _cli(home, *args, stdin=None):
    return run_kb(*args, env={**HASH, "KB_HOME": str(home)}, stdin=stdin)


def test_search_filters_give_the_same_hits_as_the_cli(served):
    server, home, _ = served
    body = {"query": "winter stores", "k": 4, "filter": {"source": ["corpus"], "type": ["pdf", "md"]}}
    with server.client() as http:
        hits = http.post("/v1/search", json=body).json()["hits"]
        nothing = http.post("/v1/search", json={"query": "x", "filter": {"type": ["docx"]}})
        bad_date = http.post("/v1/search", json={"query": "x", "filter": {"since": "last week"}})
        bad_type = http.post("/v1/search", json={"query": "x", "filter": {"type": ["*"]}})
        unknown = http.post("/v1/search", json={"query": "x", "filter": {"paths": ["a"]}})
        asked = http.post("/v1/ask", json={"question": "winter stores?", "filter": {"type": ["pdf"]}}).json()
    cli = _cli(home, "search", "winter stores", "-k", "4", "--source", "corpus", "--type", "pdf,md", "--json")
    assert hits == cli.ndjson() and {h["source"].rsplit(".", 1)[-1] for h in hits} <= {"pdf", "md"}
    assert nothing.status_code == 404 and nothing.json()["error"]["kind"] == "no_matching_documents"
    assert "GET /v1/documents lists what is" in nothing.json()["error"]["message"]
    assert bad_date.status_code == 400 and bad_date.json()["error"]["param"] == "since"
    assert bad_type.status_code == 422 and unknown.status_code == 422
    assert asked["citations"] and all(c["source"].endswith(".pdf") for c in asked["citations"])
