"""The HTTP API against a real `kb serve` (uvicorn on 127.0.0.1), talked to with httpx and
the openai client: the same JSON as the CLI, kb's errors with the right statuses, SSE,
Prometheus output, OpenAI-compatible embeddings and chat (hash embedder at the model seam)."""

from __future__ import annotations

import base64
import json
import shutil

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SAMPLE, run_kb
from tests.service.processes import Server

HASH = {"KB_MODEL": "hash"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    home, corpus = root / "home", root / "corpus"
    shutil.copytree(SAMPLE, corpus)
    assert run_kb("ingest", corpus, env={**HASH, "KB_HOME": str(home)}).code == 0
    server = Server(home, HASH).wait_ready()
    yield server, home, corpus
    assert server.stop() in (0, -15), server.output()[-2000:]  # uvicorn re-raises SIGTERM once shut down


def _cli(home, *args):
    return run_kb(*args, env={**HASH, "KB_HOME": str(home)})


def test_probes_and_openapi(served):
    server, _, _ = served
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready"}
        spec = http.get("/openapi.json").json()
        assert {"/v1/search", "/v1/ask", "/v1/ingest", "/v1/jobs/{job_id}", "/v1/embeddings"} <= set(spec["paths"])
        assert http.get("/docs").status_code == 200


def test_search_gives_the_same_hits_as_the_cli(served):
    server, home, _ = served
    with server.client() as http:
        one = http.post("/v1/search", json={"query": "queen eggs per day", "k": 3})
        assert one.status_code == 200
        cli = _cli(home, "search", "queen eggs per day", "-k", "3", "--json").ndjson()
        assert one.json()["hits"] == cli
        many = http.post("/v1/search", json={"queries": ["queen eggs per day", "winter stores"], "k": 2}).json()
        assert [r["query"] for r in many["results"]] == ["queen eggs per day", "winter stores"]
        assert many["results"][0]["hits"] == cli[:2]


def test_search_and_ask_take_mode_and_unique_sources_as_the_cli_does(served):
    server, home, _ = served
    with server.client() as http:
        for mode in ("hybrid", "dense", "keyword"):
            body = {"query": "varroa mites", "k": 4, "mode": mode, "unique_sources": True}
            hits = http.post("/v1/search", json=body).json()["hits"]
            cli = _cli(home, "search", "varroa mites", "-k", "4", "--mode", mode, "--unique-sources", "--json")
            assert hits == cli.ndjson() and len({h["source"] for h in hits}) == len(hits)
        bad = http.post("/v1/search", json={"query": "varroa", "mode": "fuzzy"})
        assert bad.status_code == 422 and bad.json()["error"]["kind"] == "invalid_request"  # not in the schema
        answer = http.post("/v1/ask", json={"question": "What is a sugar roll?", "mode": "keyword", "no_cache": True})
        cli = _cli(home, "ask", "What is a sugar roll?", "--mode", "keyword", "--no-cache", "--json").json()
        assert answer.status_code == 200 and answer.json()["answer"] == cli["answer"]


def test_ask_gives_the_same_answer_as_the_cli_and_streams(served):
    server, home, _ = served
    question = "When should I treat varroa with oxalic acid?"
    with server.client() as http:
        answer = http.post("/v1/ask", json={"question": question, "no_cache": True}).json()
        cli = _cli(home, "ask", question, "--json", "--no-cache").json()
        for key in ("question", "answer", "citations", "provider", "model"):
            assert answer[key] == cli[key], key
        events = []
        with http.stream("POST", "/v1/ask", json={"question": question, "stream": True, "no_cache": True}) as res:
            assert res.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in res.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((event, json.loads(line.removeprefix("data: "))))
        kinds = [e for e, _ in events]
        assert kinds[-1] == "answer" and "delta" in kinds
        final = events[-1][1]
        assert final["answer"] == answer["answer"] and final["citations"] == answer["citations"]
        assert "".join(d["text"] for e, d in events if e == "delta") == answer["answer"]


@pytest.mark.parametrize(
    "method, path, body, status, kind",
    [
        ("post", "/v1/search", {"query": "bees", "kb": "typo"}, 404, "kb_not_found"),
        ("post", "/v1/search", {"query": "   "}, 422, "invalid_request"),
        ("post", "/v1/search", {}, 422, "invalid_request"),
        ("post", "/v1/search", {"query": "bees", "k": 0}, 422, "invalid_request"),
        ("post", "/v1/search", {"query": "bees", "kb": "../etc"}, 422, "invalid_request"),
        ("post", "/v1/ask", {"question": "x" * 5000}, 422, "invalid_request"),
        ("post", "/v1/ask", {"question": "bees?", "provider": "nope"}, 404, "provider_not_found"),
        ("get", "/v1/jobs/job_nope", None, 404, "job_not_found"),
        ("get", "/v1/nothing-here", None, 404, "not_found"),
        ("delete", "/v1/documents?source=/no/such/file.md", None, 404, "document_not_found"),
        ("get", "/v1/stats?since=yesterday", None, 422, "invalid_request"),
        ("get", "/v1/stats?series=often", None, 422, "invalid_request"),
        ("get", "/v1/stats?series=1s&since=7d", None, 400, "input_error"),
        ("get", "/v1/stats?series=0m", None, 400, "input_error"),
        ("post", "/v1/search", {"query": "bees", "queries": ["wax"]}, 422, "invalid_request"),
    ],
)
def test_errors_carry_kind_message_and_status(served, method, path, body, status, kind):
    server, home, _ = served
    with server.client() as http:
        res = http.request(method.upper(), path, json=body)
    assert res.status_code == status, res.text
    error = res.json()["error"]
    assert error["kind"] == kind and error["message"]
    if kind == "kb_not_found" and "typo" in str(body):
        # The same error as the CLI's, each with the remedy in its own terms: no shell command over HTTP.
        cli = _cli(home, "--kb", "typo", "search", "bees").err.strip().removeprefix("error: ")
        core = f"knowledge base 'typo' does not exist in {home} (existing: default)"
        assert cli.startswith(core + "; create it with `kb --kb typo ingest PATH`")
        assert error["message"].startswith(core + "; create it by ingesting into it (POST /v1/ingest")
        assert "`kb" not in error["message"] and error["details"] == {"kb": "typo", "existing": ["default"]}


def test_bodies_over_the_limit_are_refused_with_413(tmp_path):
    home = tmp_path / "home"
    server = Server(home, {**HASH, "KB_SERVE_MAX_BODY_MB": "0.01"}).wait_ready()
    try:
        with server.client() as http:
            res = http.post("/v1/search", json={"query": "x" * 20_000})
            assert res.status_code == 413 and res.json()["error"]["kind"] == "too_large"

            def chunks():  # no Content-Length: the limit is enforced while reading
                for _ in range(20):
                    yield b" " * 1000

            res = http.post("/v1/search", content=chunks(), headers={"content-type": "application/json"})
            assert res.status_code == 413
    finally:
        server.stop()


def test_documents_info_kbs_and_stats_match_the_cli(served):
    server, home, corpus = served
    with server.client() as http:
        docs = http.get("/v1/documents").json()["documents"]
        assert docs == _cli(home, "list", "--json").ndjson()
        assert http.get("/v1/info").json() == _cli(home, "info", "--json").json()
        assert http.get("/v1/kbs").json()["kbs"] == _cli(home, "kbs", "--json").ndjson()
        stats = http.get("/v1/stats").json()
        assert set(stats) == set(_cli(home, "stats", "--json").json())
        target = str(corpus / "swarming.txt")
        assert http.delete("/v1/documents", params={"source": target}).json()["documents"] == 1
        assert all(d["source"] != target for d in http.get("/v1/documents").json()["documents"])
        assert _cli(home, "ingest", corpus).code == 0


def test_stats_series_is_kb_stats_series_json(served):
    server, home, _ = served
    with server.client() as http:
        http.post("/v1/search", json={"query": "swarm cells"})
        series = http.get("/v1/stats", params={"since": "1h", "series": "15m"}).json()
        cli = _cli(home, "stats", "--series", "15m", "--since", "1h", "--json").json()
        every = http.get("/v1/stats", params={"series": "1h", "all": "true"}).json()
    assert set(series) == set(cli) == {"since", "until", "bucket_s", "low_match", "baseline", "buckets"}
    assert series["bucket_s"] == 900 and len(series["buckets"]) == 5
    assert set(series["buckets"][-1]) == set(cli["buckets"][-1])
    assert series["buckets"][-1]["requests"]["search"] >= 1
    assert len(every["buckets"]) == 25  # the default window: 24h


def test_prometheus_metrics_parse_and_count(served):
    server, _, _ = served
    with server.client() as http:
        http.post("/v1/search", json={"query": "swarm cells"})
        http.post("/v1/ask", json={"question": "What is a swarm?"})
        text = http.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("kb_http_requests", "kb_http_request_seconds", "kb_ask_stage_seconds", "kb_answer_cache",
                 "kb_top1_similarity", "kb_breaker_state", "kb_queue_depth", "kb_jobs", "kb_tokens"):  # fmt: skip
        assert name in families, name
    searches = [s for s in families["kb_http_requests"].samples
                if s.labels.get("route") == "/v1/search" and s.name.endswith("_total")]  # fmt: skip
    assert sum(s.value for s in searches) >= 1


def test_openai_client_embeddings_and_chat(served):
    import openai

    server, home, _ = served
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    emb = client.embeddings.create(model="kb", input=["bees make honey", "queens lay eggs"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 384
    with httpx.Client(base_url=server.url) as http:
        raw = http.post("/v1/embeddings", json={"input": "bees make honey", "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vector, emb.data[0].embedding, atol=1e-6)

    chat = client.chat.completions.create(model="default", messages=[
        {"role": "system", "content": "ignored"}, {"role": "user", "content": "How many eggs does a queen lay?"}])  # fmt: skip
    text = chat.choices[0].message.content
    cli = _cli(home, "ask", "How many eggs does a queen lay?", "--json").json()
    assert text.startswith(cli["answer"]) and "[1] " in text
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "How many eggs does a queen lay?"}], stream=True)
        if c.choices]  # fmt: skip
    assert "".join(parts) == text
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="typo", messages=[{"role": "user", "content": "hi"}])


def _raw(obj) -> dict:
    """A JSON body as bytes, lone surrogates escaped the way JSON allows (`\\ud800`)."""
    return {"content": json.dumps(obj).encode(), "headers": {"content-type": "application/json"}}


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/search", {"query": "\ud800 bees"}),
        ("/v1/search", {"queries": ["bees", "\udfff"]}),
        ("/v1/ask", {"question": "\ud800 bees"}),
        ("/v1/ask", {"question": "\ud800 bees", "stream": True}),
        ("/v1/embeddings", {"input": ["\ud800"]}),
        ("/v1/chat/completions", {"model": "default", "messages": [{"role": "user", "content": "\ud800"}]}),
        (
            "/v1/chat/completions",
            {"model": "default", "messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
        ),
        (
            "/v1/chat/completions",
            {"model": "default", "messages": [{"role": "user", "content": [{"type": "text", "text": 42}]}]},
        ),
        ("/v1/ingest", {"paths": ["/tmp/\ud800"]}),
    ],
)
def test_text_that_is_not_unicode_and_wrong_types_are_422_never_500(served, path, body):
    server, _, _ = served
    with server.client() as http:
        res = http.post(path, **_raw(body))
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert error["kind"] == "invalid_request" and error["type"] == "invalid_request_error" and error["param"]
    assert "Traceback" not in server.output() and "Internal Server Error" not in server.output()


def test_a_streamed_question_is_validated_before_the_stream_starts(served):
    server, _, _ = served
    with server.client() as http:
        empty = http.post("/v1/ask", json={"question": "  ", "stream": True})
        typo = http.post("/v1/ask", json={"question": "bees?", "kb": "typo", "stream": True})
    assert empty.status_code == 422 and empty.headers["content-type"].startswith("application/json")
    assert typo.status_code == 404 and typo.json()["error"]["kind"] == "kb_not_found"


def test_removal_needs_an_absolute_path_or_a_named_root(served):
    server, home, corpus = served
    before = len(_cli(home, "list", "--json").ndjson())
    with server.client() as http:
        relative = http.delete("/v1/documents", params={"source": "varroa_mites.html"})
        assert relative.status_code == 400 and "relative" in relative.json()["error"]["message"]
        not_a_root = http.delete("/v1/documents", params={"source": "varroa_mites.html", "root": str(corpus)})
        assert not_a_root.status_code == 400  # this server has no roots at all
    assert len(_cli(home, "list", "--json").ndjson()) == before  # nothing was removed


def test_the_openai_dialect_lists_models_and_refuses_what_it_cannot_do(served):
    import openai

    server, _, _ = served
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["default"]
    assert client.models.retrieve("default").owned_by == "kb"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("typo")
    messages = [{"role": "user", "content": "How many eggs does a queen lay?"}]
    for extra in ({"n": 2}, {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
                  {"logprobs": True}, {"response_format": {"type": "json_object"}}):  # fmt: skip
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="default", messages=messages, **extra)
        assert info.value.body["param"] == next(iter(extra)), info.value.body
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="kb", input="bees", dimensions=128)
    with pytest.raises(openai.BadRequestError, match="send 1 to 256 inputs"):
        client.embeddings.create(model="kb", input=["bees"] * 257)
    chat = client.chat.completions.create(model="default", messages=messages, temperature=0.2, max_tokens=50)
    assert chat.usage is not None and "kb_note" in chat.usage.model_extra  # sampling parameters: accepted
