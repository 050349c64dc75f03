"""Search filters, conversations and the reranker over HTTP, against a real `kb serve` whose
[reranker] is a loopback fake reranker (tests/fake_reranker.py): the same JSON as the CLI,
the chat dialect's conversation, and the fallback counted in /metrics and /v1/stats (hash
embedder at the model seam)."""

from __future__ import annotations

import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SAMPLE, run_kb, write_config
from tests.fake_reranker import FakeReranker
from tests.service.processes import Server

HASH = {"KB_MODEL": "hash"}
CANDLES = [
    {"role": "user", "content": "How do I make candles from beeswax?"},
    {"role": "assistant", "content": "Pour it into moulds with a wick."},
]


@pytest.fixture(scope="module")
def served_reranked(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    home, corpus = root / "home", root / "corpus"
    shutil.copytree(SAMPLE, corpus)
    reranker = FakeReranker(favour="wax").start()
    write_config(home, f'[reranker]\nkind = "http"\nbase_url = "{reranker.url}"\n[breaker]\nfailure_threshold = 100\n')
    assert run_kb("ingest", corpus, env={**HASH, "KB_HOME": str(home)}).code == 0
    server = Server(home, HASH).wait_ready()
    yield server, home, corpus, reranker
    assert server.stop() in (0, -15), server.output()[-2000:]
    reranker.stop()


def _cli(home, *args, stdin=None):
    return run_kb(*args, env={**HASH, "KB_HOME": str(home)}, stdin=stdin)


def test_search_filters_give_the_same_hits_as_the_cli(served_reranked):
    server, home, _, _ = served_reranked
    body = {"query": "winter stores", "k": 4, "filter": {"source": ["corpus"], "type": ["pdf", "md"]}}
    with server.client() as http:
        hits = http.post("/v1/search", json=body).json()["hits"]
        nothing = http.post("/v1/search", json={"query": "x", "filter": {"type": ["docx"]}})
        bad_date = http.post("/v1/search", json={"query": "x", "filter": {"since": "2025-02-30"}})
        no_date = http.post("/v1/search", json={"query": "x", "filter": {"since": "last week"}})
        bad_type = http.post("/v1/search", json={"query": "x", "filter": {"type": ["*"]}})
        unknown = http.post("/v1/search", json={"query": "x", "filter": {"paths": ["a"]}})
        asked = http.post("/v1/ask", json={"question": "winter stores?", "filter": {"type": ["pdf"]}}).json()
    cli = _cli(home, "search", "winter stores", "-k", "4", "--source", "corpus", "--type", "pdf,md", "--json")
    assert hits == cli.ndjson() and {h["source"].rsplit(".", 1)[-1] for h in hits} <= {"pdf", "md"}
    assert nothing.status_code == 404 and nothing.json()["error"]["kind"] == "no_matching_documents"
    assert "GET /v1/documents lists what is" in nothing.json()["error"]["message"]
    assert bad_date.status_code == 400 and bad_date.json()["error"]["param"] == "since"
    assert bad_type.status_code == 422 and unknown.status_code == 422 and no_date.status_code == 422
    assert asked["citations"] and all(c["source"].endswith(".pdf") for c in asked["citations"])


def test_the_reranker_orders_hits_unless_asked_not_to_and_its_fallback_is_counted(served_reranked):
    server, home, _, reranker = served_reranked
    with server.client() as http:
        reranked = http.post("/v1/search", json={"query": "honey harvest", "k": 3}).json()["hits"]
        fused = http.post("/v1/search", json={"query": "honey harvest", "k": 3, "rerank": False}).json()["hits"]
        assert "wax" in reranked[0]["text"].lower() and reranked[0]["rerank_score"] >= 1
        assert all(h["rerank_score"] is None for h in fused)
        assert _cli(home, "search", "honey harvest", "-k", "3", "--no-rerank", "--json").ndjson() == fused
        reranker.mode = "500"
        try:
            fallen = http.post("/v1/search", json={"query": "honey harvest", "k": 3}).json()["hits"]
            answer = http.post("/v1/ask", json={"question": "What is the honey harvest?", "no_cache": True}).json()
        finally:
            reranker.mode = "ok"
        metrics = http.get("/metrics").text
        stats = http.get("/v1/stats").json()
    assert [h["chunk_id"] for h in fallen] == [h["chunk_id"] for h in fused]
    assert answer["attempts"][0] == {
        **answer["attempts"][0],
        "provider": "reranker",
        "stage": "rerank",
        "outcome": "error",
    }
    samples = {
        s.labels["outcome"]: s.value
        for f in text_string_to_metric_families(metrics)
        if f.name == "kb_reranker_calls"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert samples["ok"] >= 1 and samples["error"] >= 2
    assert stats["reranker"]["fell_back"] >= 2 and stats["reranker"]["reranked"] >= 1


def test_ask_and_chat_take_a_conversation_as_kb_chat_does(served_reranked):
    import openai

    server, home, _, _ = served_reranked
    with server.client() as http:
        asked = http.post(
            "/v1/ask", json={"question": "What temperature should it be?", "history": CANDLES, "rerank": False}
        ).json()
        refused = http.post("/v1/ask", json={"question": "x?", "history": [{"role": "system", "content": "x"}]})
    chat = _cli(
        home,
        "chat",
        "--json",
        "--no-rerank",
        stdin="How do I make candles from beeswax?\nWhat temperature should it be?\n",
    )
    second = chat.ndjson()[1]
    assert asked["standalone_method"] == second["standalone_method"] == "weighted"
    assert asked["standalone_question"] == "How do I make candles from beeswax? What temperature should it be?"
    assert (asked["answer"], asked["citations"]) == (second["answer"], second["citations"])
    assert refused.status_code == 422

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    messages = [
        {"role": "system", "content": "ignored"},
        *CANDLES,
        {"role": "user", "content": "What temperature should it be?"},
    ]
    completion = client.chat.completions.create(model="default", messages=messages, extra_body={"rerank": False})
    kb_answer = completion.model_extra["kb_answer"]
    assert kb_answer["standalone_question"] == asked["standalone_question"]
    assert (kb_answer["answer"], kb_answer["citations"]) == (asked["answer"], asked["citations"])
    with pytest.raises(openai.NotFoundError, match="matches the filter"):
        client.chat.completions.create(model="default", messages=messages, extra_body={"filter": {"type": ["docx"]}})
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="default", messages=messages, stream=True, extra_body={"rerank": False}
        )
        if c.choices
    )
    assert streamed == completion.choices[0].message.content
