"""`[embedding] kind = "openai"`: kb against a fake OpenAI-compatible embeddings service on
127.0.0.1 (the network seam; tests/fake_embeddings.py), with the real Chroma, manifest and
CLI. Batching, concurrency, retries, the breaker, the query cache, garbage refused, the
embedder's identity, and an ingest that fails without losing anything."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from kb.config import load_settings
from kb.embedding.remote import parse_embeddings
from kb.errors import BadResponse, CircuitOpen, ConfigError, ProviderUnavailable, RateLimited
from kb.options import SearchOptions
from tests.conftest import write_config
from tests.fake_embeddings import FakeEmbeddings

MODEL = "fake-embed"
DENSE = SearchOptions(mode="dense")
KEY = "sk-fake-embeddings-key-1234"


@pytest.fixture
def fake_embeddings():
    server = FakeEmbeddings().start()
    yield server
    server.stop()


def configure(home, url: str, *, breaker_threshold: int = 100, **embedding) -> None:
    values = {"kind": "openai", "base_url": url, "model": MODEL, "api_key_env": "KB_FAKE_EMBED_KEY",
              "max_retries": 1, "timeout_s": 5, **embedding}  # fmt: skip
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    write_config(home, f"[embedding]\n{lines}\n\n[breaker]\nfailure_threshold = {breaker_threshold}\ncooldown_s = 60\n")


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("KB_FAKE_EMBED_KEY", KEY)


def corpus(tmp_path, n: int = 6):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    topics = ["apples and pears in the orchard", "bees make honey in the hive", "granite and basalt rocks",
              "violin and cello music", "rivers flow to the sea", "stars and galaxies at night"]  # fmt: skip
    for i in range(n):
        (docs / f"doc{i}.md").write_text(f"# Note {i}\n\n{topics[i % len(topics)]}, note {i}.\n")
    return docs


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_fake_embeddings_ingest_and_search_in_batches(tmp_path, kb_home, make_kb, fake_embeddings, encoding):
    configure(kb_home, fake_embeddings.url, batch_size=2, encoding_format=encoding,
              document_prefix="passage: ", query_prefix="query: ")  # fmt: skip
    kb = make_kb()
    report = kb.ingest([corpus(tmp_path)])
    assert report.added == 6 and not report.failed
    sent = fake_embeddings.requests
    assert all(len(r["input"]) <= 2 and r["model"] == MODEL for r in sent)
    assert all(r["encoding_format"] == encoding for r in sent)
    assert all(t.startswith("passage: ") for t in fake_embeddings.texts)
    assert set(fake_embeddings.auth) == {f"Bearer {KEY}"}

    hits = kb.search("bees honey hive", k=1)
    assert hits[0].source.endswith(("doc1.md",))
    assert fake_embeddings.requests[-1]["input"] == ["query: bees honey hive"]
    assert kb.info().model == f"openai:{MODEL}"


def test_fake_embeddings_vectors_are_what_the_service_sent(tmp_path, kb_home, make_kb, fake_embeddings):
    """The stored vectors are the service's (normalised), whatever their encoding on the wire."""
    configure(kb_home, fake_embeddings.url)
    embedder = make_kb().home.embedder
    texts = ["one text", "another text entirely"]
    expected = np.array([e["embedding"] for e in fake_embeddings.vectors(texts, "float", fake_embeddings.dimension)])
    assert np.allclose(embedder.embed(texts), expected, atol=1e-6)
    assert embedder.dimension == fake_embeddings.dimension


def test_fake_embeddings_requests_run_concurrently_up_to_the_limit(tmp_path, kb_home, make_kb, fake_embeddings):
    fake_embeddings.meet = 3  # each request waits until three are in flight
    configure(kb_home, fake_embeddings.url, batch_size=1, max_concurrency=3)
    make_kb().home.embedder.embed([f"text {i}" for i in range(9)])
    assert fake_embeddings.most_in_flight == 3


def test_fake_embeddings_one_request_at_a_time_when_told(tmp_path, kb_home, make_kb, fake_embeddings):
    configure(kb_home, fake_embeddings.url, batch_size=1, max_concurrency=1)
    vectors = make_kb().home.embedder.embed([f"text {i}" for i in range(5)])
    assert fake_embeddings.most_in_flight == 1 and fake_embeddings.hits == 5 and vectors.shape == (5, 64)


def test_fake_embeddings_retries_429_5xx_and_resets(tmp_path, kb_home, make_kb, fake_embeddings):
    fake_embeddings.script = ["429", "500", "reset"]
    configure(kb_home, fake_embeddings.url, max_retries=3, max_concurrency=1)
    vectors = make_kb().home.embedder.embed(["retried until it answers"])
    assert vectors.shape == (1, 64) and fake_embeddings.hits == 4


def test_fake_embeddings_retry_after_past_the_deadline_fails_at_once(tmp_path, kb_home, make_kb, fake_embeddings):
    """A Retry-After longer than the whole deadline is not slept through: the error goes up."""
    fake_embeddings.mode, fake_embeddings.retry_after = "429", "3600"
    configure(kb_home, fake_embeddings.url, max_retries=3, timeout_s=1)
    with pytest.raises(RateLimited, match=fake_embeddings.url):
        make_kb().home.embedder.embed(["too many requests"])
    assert fake_embeddings.hits == 1


@pytest.mark.parametrize("mode", ["garbage", "short", "nan", "401"])
def test_fake_embeddings_garbage_fails_the_ingest_cleanly(tmp_path, kb_home, cli, fake_embeddings, mode):
    fake_embeddings.mode = mode
    configure(kb_home, fake_embeddings.url)
    result = cli("ingest", corpus(tmp_path))
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and fake_embeddings.url in lines[0] and "Traceback" not in result.err, result.err
    if mode == "401":
        assert "KB_FAKE_EMBED_KEY" in lines[0] and KEY not in result.err
    assert cli("list", "--json").out.strip() in ("", "[]")  # nothing half-stored


def test_fake_embeddings_service_down_loses_nothing(tmp_path, kb_home, cli, fake_embeddings):
    configure(kb_home, fake_embeddings.url)
    docs = corpus(tmp_path)
    assert cli("ingest", docs).code == 0
    before = cli("list", "--json").out
    (docs / "doc0.md").write_text("# Note 0\n\nquartz crystals in a cave.\n")
    (docs / "extra.md").write_text("# Extra\n\nlighthouses on the coast.\n")

    fake_embeddings.mode = "500"
    down = cli("ingest", docs)
    assert down.code == 1 and fake_embeddings.url in down.err and len(down.err.strip().splitlines()) == 1
    assert cli("list", "--json").out == before  # every document keeps its chunks
    searched = cli("search", "apples")
    assert searched.code == 1 and fake_embeddings.url in searched.err
    assert cli("search", "apples", "--mode", "keyword", "--json").ndjson()[0]["source"].endswith("doc0.md")

    fake_embeddings.mode = "ok"
    report = json.loads(cli("ingest", docs, "--json").out.strip().splitlines()[-1])
    assert (report["added"], report["updated"]) == (1, 1)
    assert cli("search", "quartz crystals", "-k", "1", "--json").ndjson()[0]["source"].endswith("doc0.md")
    assert not any("apples" in h["text"] for h in cli("search", "apples", "-k", "6", "--json").ndjson())


def test_fake_embeddings_breaker_opens_and_names_the_service(tmp_path, kb_home, make_kb, fake_embeddings):
    fake_embeddings.mode = "500"
    configure(kb_home, fake_embeddings.url, breaker_threshold=2, max_retries=0)
    embedder = make_kb().home.query_embedder
    for i in range(2):
        with pytest.raises(ProviderUnavailable, match="fake 500"):
            embedder.embed([f"query {i}"])
    with pytest.raises(CircuitOpen, match=fake_embeddings.url):
        embedder.embed(["query 3"])
    assert fake_embeddings.hits == 2  # the open breaker sent nothing


def test_fake_embeddings_repeated_queries_come_from_the_cache(tmp_path, kb_home, make_kb, fake_embeddings):
    configure(kb_home, fake_embeddings.url)
    kb = make_kb()
    kb.ingest([corpus(tmp_path)])
    sent = fake_embeddings.hits
    for _ in range(3):
        kb.search("rivers and the sea", options=DENSE)
    assert fake_embeddings.hits == sent + 1


def test_fake_embeddings_refuse_a_kb_built_by_another_embedder(tmp_path, kb_home, make_kb, fake_embeddings):
    docs = corpus(tmp_path)
    make_kb(model="hash").ingest([docs])
    configure(kb_home, fake_embeddings.url)
    with pytest.raises(ConfigError) as refused:
        make_kb().ingest([docs])
    message = str(refused.value)
    assert "hash (local" in message and f"{MODEL} (openai" in message
    assert fake_embeddings.hits == 0


def test_fake_embeddings_refuse_another_dimension(tmp_path, kb_home, make_kb, fake_embeddings):
    configure(kb_home, fake_embeddings.url)
    docs = corpus(tmp_path)
    make_kb().ingest([docs])
    fake_embeddings.mode = "wide"  # the same model name, now 128-dimensional
    with pytest.raises(ConfigError, match=r"64 dimensions.*128 dimensions"):
        make_kb().search("stars at night", options=DENSE)
    (docs / "doc9.md").write_text("# Nine\n\nnew text\n")
    with pytest.raises(ConfigError, match=r"64 dimensions.*128 dimensions"):
        make_kb().ingest([docs])
    assert len(make_kb().documents()) == 6


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"data": [{"index": 0, "embedding": [1.0, 0.0]}]}, "1 embeddings for 2 inputs"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}, "repeated index"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}, "different dim"),
        ({"data": [{"index": 0, "embedding": "not base64!"}, {"index": 1, "embedding": "AAAA"}]}, "base64"),
        ({"data": [{"index": 0, "embedding": [0.0]}, {"index": 1, "embedding": [1.0]}]}, "all-zero"),
        ({"data": [{"index": 0, "embedding": ["1"]}, {"index": 1, "embedding": [1.0]}]}, "other than numbers"),
        ({"error": "overloaded"}, "no data list"),
    ],
)
def test_garbage_responses_are_named(payload, why):
    with pytest.raises(ValueError, match=why):
        parse_embeddings(payload, 2)


def test_responses_out_of_order_come_back_in_input_order():
    payload = {"data": [{"index": 1, "embedding": [0.0, 2.0]}, {"index": 0, "embedding": [3.0, 0.0]}]}
    assert parse_embeddings(payload, 2).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_unusable_embedding_settings_are_config_errors(kb_home):
    write_config(kb_home, '[embedding]\nkind = "openai"\nmodel = "m"\n')
    with pytest.raises(ConfigError, match="base_url"):
        load_settings()
    write_config(kb_home, '[embedding]\nkind = "openai"\nbase_url = "gpu-box:8080"\nmodel = "m"\n')
    with pytest.raises(ConfigError, match="base_url"):
        load_settings()
    write_config(kb_home, '[embedding]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n')
    with pytest.raises(ConfigError, match="model"):
        load_settings()


def test_fake_embeddings_key_is_masked_and_scrubbed(kb_home, fake_embeddings):
    configure(kb_home, fake_embeddings.url)
    settings = load_settings()
    assert settings.public_dict()["embedding"]["api_key"] == "****" + KEY[-4:]
    assert KEY in settings.secrets()


def test_bad_response_is_retryable():
    assert BadResponse("x").retryable


def test_fake_embeddings_shared_mode_two_instances_agree_on_the_embedder(
    tmp_path, fake_embeddings, monkeypatch, redis_url, chroma_server
):
    """With a Chroma server and Redis: what one instance ingests through the service, another
    finds through it, and the dimension the first recorded holds for the second too."""
    from kb import KnowledgeBase

    monkeypatch.setenv("KB_STORE_URL", chroma_server.url)
    monkeypatch.setenv("KB_STATE_URL", redis_url)
    name = f"t{uuid.uuid4().hex[:10]}"  # one Chroma server for the session: a collection per test
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        configure(home, fake_embeddings.url, breaker_threshold=2, max_retries=0)
    a, b = (KnowledgeBase(load_settings(home=str(h), kb=name)) for h in homes)
    try:
        assert a.ingest([corpus(tmp_path)]).added == 6
        assert b.search("bees honey hive", k=1)[0].source.endswith("doc1.md")
        fake_embeddings.mode = "wide"
        with pytest.raises(ConfigError, match=r"64 dimensions.*128 dimensions"):
            b.search("stars and galaxies", options=DENSE)
        fake_embeddings.mode = "500"  # the breaker is on Redis: what b counts, a sees
        for query in ("one", "two"):
            with pytest.raises(ProviderUnavailable):
                b.search(query, options=DENSE)
        with pytest.raises(CircuitOpen):
            a.search("three", options=DENSE)
    finally:
        for kb in (a, b):
            kb.close()
            kb.home.close()
