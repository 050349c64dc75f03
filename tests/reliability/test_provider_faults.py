"""Provider faults end to end: the primary (the OpenAI-compatible test server on
127.0.0.1, faked at the network seam) fails one way for 100 consecutive asks; every ask
is still answered, by the extractive fallback; once the breaker is open the primary costs
no request and next to no time; after it recovers, traffic returns to it."""

from __future__ import annotations

import statistics

import pytest

from kb import KnowledgeBase
from kb.config import load_settings
from tests.conftest import SAMPLE, provider_config, write_config

ASKS = 100
THRESHOLD = 3


@pytest.mark.parametrize("mode", ["slow", "429", "500", "401", "reset", "malformed"])
def test_hundred_asks_with_a_failing_primary_hash_embedder(mode, fake_openai, kb_home, monkeypatch):
    monkeypatch.setenv("KB_TEST_KEY", "sk-test-faults")
    KnowledgeBase(load_settings(model="hash")).ingest([SAMPLE])
    write_config(
        kb_home, provider_config(fake_openai.url, timeout_s=0.3, max_retries=1, threshold=THRESHOLD, cooldown_s=3600)
    )
    fake_openai.mode, fake_openai.delay = mode, 2.0
    kb = KnowledgeBase(load_settings(model="hash"))

    answers = [kb.ask(f"How do bees make honey, variant {i}?", use_cache=False) for i in range(ASKS)]
    assert all(a.provider == "extractive" and a.answer.strip() for a in answers)
    primary = [a.attempts[0] for a in answers]
    assert all(p.provider == "primary" and p.outcome != "ok" for p in primary)
    failed = [p for p in primary if p.outcome == "error"]
    assert len(failed) == THRESHOLD  # then the breaker opened and stayed open
    skipped = [p for p in primary if p.outcome == "skipped"]
    assert len(skipped) == ASKS - THRESHOLD and {p.error for p in skipped} == {"circuit_open"}
    requests_while_open = fake_openai.hits
    # Only the asks before the breaker opened reached the server (each at most twice: one retry).
    assert 0 < requests_while_open <= THRESHOLD * 2
    assert statistics.median(p.latency_ms for p in skipped) < 5.0
    assert max(p.latency_ms for p in skipped) < 50.0

    fake_openai.mode = "ok"
    write_config(
        kb_home, provider_config(fake_openai.url, timeout_s=0.3, max_retries=1, threshold=THRESHOLD, cooldown_s=0)
    )  # the cool-down is over: next ask probes
    recovered = KnowledgeBase(load_settings(model="hash"))
    after = [recovered.ask(f"What is propolis, variant {i}?", use_cache=False) for i in range(5)]
    assert [a.provider for a in after] == ["primary"] * 5
    assert fake_openai.hits == requests_while_open + 5
