"""The reranker stage: both HTTP dialects against a loopback fake reranker (tests/fake_reranker.py:
no model, it favours a word), retries, the breaker, the timeout and the fallback to the fused
order with a notice, visible in kb stats; the local CrossEncoder's refusal of a missing
folder. Real Chroma and SQLite; the hash embedder (a fake model)."""

from __future__ import annotations

import time

import pytest

from kb import KnowledgeBase, SearchOptions
from kb.config import load_settings
from kb.errors import ConfigError
from tests.conftest import write_config
from tests.fake_reranker import FakeReranker

COLOURS = [
    "amber",
    "black",
    "cobalt",
    "crimson",
    "ebony",
    "green",
    "indigo",
    "ivory",
    "lemon",
    "olive",
    "pearl",
    "teal",
]


@pytest.fixture
def fake_reranker():
    server = FakeReranker(favour="crimson").start()
    yield server
    server.stop()


@pytest.fixture
def notes(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i, colour in enumerate(COLOURS):
        (folder / f"{colour}.md").write_text(f"# Hive {i}\n\nThe {colour} hive was treated for varroa in week {i}.\n")
    return folder


def _config(url: str, **extra: object) -> str:
    lines = ["[reranker]", 'kind = "http"', f'base_url = "{url}"', 'model = "BAAI/bge-reranker-base"']
    lines += [f"{key} = {value!r}" if isinstance(value, str) else f"{key} = {value}" for key, value in extra.items()]
    lines = [line.replace("'", '"') for line in lines]
    return "\n".join(lines) + "\n[breaker]\nfailure_threshold = 2\ncooldown_s = 600\n"


def _kb(kb_home, notes, config: str) -> KnowledgeBase:
    write_config(kb_home, config)
    kb = KnowledgeBase(load_settings(model="hash"))
    assert not kb.ingest([notes]).failed
    return kb


def _fused(kb: KnowledgeBase, query: str = "varroa hive", k: int = 5) -> list[str]:
    return [h.chunk_id for h in kb.search(query, k, options=SearchOptions(rerank=False))]


def test_the_cohere_dialect_reorders_the_fused_candidates_with_loopback_fake_reranker_hash_embedder(
    kb_home, notes, fake_reranker, monkeypatch
):
    monkeypatch.setenv("KB_TEST_RERANK_KEY", "rk-test-0123456789")
    kb = _kb(kb_home, notes, _config(fake_reranker.url, api_key_env="KB_TEST_RERANK_KEY"))
    fused = _fused(kb, k=12)
    assert fake_reranker.hits == 0  # rerank=False: not asked
    hits = kb.search("varroa hive", 5)
    assert hits[0].source.endswith("crimson.md") and hits[0].rerank_score == 1.0
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    rest = [h.chunk_id for h in hits[1:]]
    assert rest == [cid for cid in fused if cid != hits[0].chunk_id][:4]  # ties keep the fused order
    assert all(h.rerank_score == 0.0 for h in hits[1:]) and all(h.score is not None for h in hits)
    body = fake_reranker.requests[-1]
    assert fake_reranker.paths[-1] == "/v1/rerank" and fake_reranker.auth[-1] == "Bearer rk-test-0123456789"
    assert set(body) == {"model", "query", "documents", "top_n"} and body["model"] == "BAAI/bge-reranker-base"
    assert body["query"] == "varroa hive" and len(body["documents"]) == body["top_n"] == 12  # every candidate (< 30)
    assert body["documents"][0].startswith("Hive ")  # the heading path travels with the passage
    kb.close()


def test_the_tei_dialect_and_the_candidate_count_with_loopback_fake_reranker_hash_embedder(
    kb_home, notes, fake_reranker
):
    kb = _kb(kb_home, notes, _config(fake_reranker.url, dialect="tei", candidates=4))
    fused = _fused(kb, k=12)
    crimson_fused_rank = next(
        i for i, cid in enumerate(fused) if "crimson" in kb.access.manifest.chunks([cid])[cid].text
    )
    hits = kb.search("varroa hive", 3)
    body = fake_reranker.requests[-1]
    assert set(body) == {"query", "texts", "truncate"} and len(body["texts"]) == 4  # candidates = 4
    if crimson_fused_rank < 4:
        assert hits[0].source.endswith("crimson.md")
    else:  # not among the four candidates: the fused order, each scored
        assert [h.chunk_id for h in hits] == fused[:3] and all(h.rerank_score == 0.0 for h in hits)
    kb.close()


@pytest.mark.parametrize("mode", ["500", "malformed", "reset", "401"])
def test_a_failing_reranker_leaves_the_fused_order_with_a_notice_and_its_breaker_opens_with_loopback_fake_reranker(
    kb_home, notes, fake_reranker, mode
):
    kb = _kb(kb_home, notes, _config(fake_reranker.url, max_retries=1))
    notices: list[str] = []
    kb.on_notice = notices.append
    fused = _fused(kb)
    fake_reranker.mode = mode
    for _ in range(3):
        hits = kb.search("varroa hive", 5)
        assert [h.chunk_id for h in hits] == fused and all(h.rerank_score is None for h in hits)
    assert len(notices) == 1 and "fused order" in notices[0] and "\n" not in notices[0]  # once while it fails
    retried = mode in ("500", "reset", "malformed")
    assert fake_reranker.hits == 2 * (2 if retried else 1)  # then the breaker (threshold 2) skips it
    stats = kb.stats()["reranker"]
    assert (stats["calls"], stats["reranked"], stats["fell_back"], stats["breaker"]) == (3, 0, 3, "open")
    assert stats["failures"]["circuit_open"] == 1
    assert "reranker" not in kb.stats()["providers"]
    fake_reranker.mode = "ok"
    kb.close()


def test_a_slow_reranker_is_cut_off_at_its_timeout_with_loopback_fake_reranker_hash_embedder(
    kb_home, notes, fake_reranker
):
    kb = _kb(kb_home, notes, _config(fake_reranker.url, timeout_s=0.5))
    fused = _fused(kb)
    fake_reranker.mode, fake_reranker.delay = "slow", 3.0
    started = time.monotonic()
    hits = kb.search("varroa hive", 5)
    assert time.monotonic() - started < 2.0
    assert [h.chunk_id for h in hits] == fused
    assert kb.stats()["reranker"]["failures"] == {"timeout": 1}
    kb.close()


def test_answers_carry_the_rerank_attempt_and_the_cache_keys_on_the_reranker_with_loopback_fake_reranker(
    kb_home, notes, fake_reranker
):
    kb = _kb(kb_home, notes, _config(fake_reranker.url))
    answer = kb.ask("Which hive was treated for varroa?")
    assert answer.citations[0].source.endswith("crimson.md")
    assert [(a.provider, a.stage, a.outcome) for a in answer.attempts] == [
        ("reranker", "rerank", "ok"), ("extractive", "answer", "ok")
    ]  # fmt: skip
    assert kb.ask("Which hive was treated for varroa?").cached is True
    assert kb.ask("Which hive was treated for varroa?", options=SearchOptions(rerank=False)).cached is False
    fake_reranker.mode = "500"
    degraded = kb.ask("Which hive was treated in week 3?")
    assert (degraded.attempts[0].provider, degraded.attempts[0].outcome) == ("reranker", "error")
    assert kb.ask("Which hive was treated in week 3?").cached is False  # a fallback is never cached
    fake_reranker.mode = "ok"
    kb.close()


def test_a_local_reranker_refuses_a_missing_folder_clearly_hash_embedder(kb_home, notes, tmp_path):
    from kb.rerankers.cross_encoder import CrossEncoderReranker

    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as caught:
        CrossEncoderReranker(str(missing))
    assert str(missing) in str(caught.value) and "CrossEncoder" in str(caught.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"config\.json"):
        CrossEncoderReranker(str(tmp_path / "empty"))
    kb = _kb(kb_home, notes, f'[reranker]\nkind = "local"\nmodel_path = "{missing}"\n')
    notices: list[str] = []
    kb.on_notice = notices.append
    hits = kb.search("varroa hive", 3)  # the search still answers, in fused order
    assert len(hits) == 3 and len(notices) == 1 and "is not a folder" in notices[0]
    kb.close()


def test_reranker_settings_are_checked_and_shown(kb_home, monkeypatch, cli):
    write_config(kb_home, '[reranker]\nkind = "http"\n')
    with pytest.raises(ConfigError, match="base_url"):
        load_settings()
    write_config(kb_home, '[reranker]\nkind = "local"\n')
    with pytest.raises(ConfigError, match="model_path"):
        load_settings()
    write_config(kb_home, '[reranker]\nkind = "http"\nbase_url = "ftp://x"\n')
    with pytest.raises(ConfigError, match="http"):
        load_settings()
    write_config(kb_home, '[[providers]]\nname = "reranker"\nkind = "extractive"\n')
    with pytest.raises(ConfigError, match="reranker"):
        load_settings()
    write_config(kb_home, '[reranker]\ndialect = "jina"\n')
    with pytest.raises(ConfigError, match="cohere, tei"):
        load_settings()
    write_config(kb_home, '[reranker]\nkind = "http"\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "RK"\n')
    monkeypatch.setenv("RK", "rk-secret-0123456789")
    monkeypatch.setenv("KB_RERANKER_CANDIDATES", "12")
    settings = load_settings()
    assert settings.reranker.candidates == 12 and settings.reranker.timeout_s == 5.0
    shown = cli("config", "show")  # JSON off a terminal
    assert shown.code == 0, shown.err
    reranker = shown.json()["reranker"]
    assert reranker["kind"] == "http" and reranker["api_key"] == "****6789" and "rk-secret" not in shown.out


def test_a_local_cross_encoder_folder_reorders_the_candidates_real_model(kb_home, notes, tmp_path):
    """kind = "local" end to end: a CrossEncoder folder made from the packaged MiniLM weights
    with a one-label head (untrained: its scores mean nothing, so only the stage's working is
    asserted, not its order), loaded by sentence-transformers in this process."""
    import json

    from kb.embedding import model_dir

    packaged = model_dir(load_settings())
    folder = tmp_path / "cross-encoder"
    folder.mkdir()
    for name in (
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
    ):
        (folder / name).symlink_to(packaged / name)
    config = json.loads((packaged / "config.json").read_text())
    config.update(architectures=["BertForSequenceClassification"], num_labels=1)
    (folder / "config.json").write_text(json.dumps(config))
    kb = _kb(kb_home, notes, f'[reranker]\nkind = "local"\nmodel_path = "{folder}"\ncandidates = 8\n')
    notices: list[str] = []
    kb.on_notice = notices.append
    fused = _fused(kb, k=5)
    hits = kb.search("varroa hive", 5)
    scores = [h.rerank_score for h in hits]
    assert not notices and all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    assert {h.chunk_id for h in hits} <= set(_fused(kb, k=8)) and len(hits) == len(fused) == 5
    assert kb.stats()["reranker"]["reranked"] == 1
    kb.close()
