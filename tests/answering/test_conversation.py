"""Conversations: a follow-up question is retrieved for as the conversation means it, by
weighted earlier turns without a language model and by a condensed standalone question with
one (the OpenAI-compatible test server on loopback, tests/openai_server.py); the history
reaches the model's prompt within its context. Real model and Chroma on sample_corpus."""

from __future__ import annotations

import pytest

from kb import Turn
from kb.answering.conversation import CONDENSE_SYSTEM, CondensePrompt, clean_history, standalone_text, weighted
from kb.answering.prompt import Prompt
from kb.documents import Hit
from kb.errors import InputError
from tests.conftest import provider_config, write_config

FIRST = "How do I make candles from beeswax?"
FOLLOW_UP = "What temperature should it be?"
EARLIER = [
    {"role": "user", "content": FIRST},
    {"role": "assistant", "content": "Render old comb in a solar wax extractor, then pour it into moulds with a wick."},
]
CONDENSED = "At what temperature should beeswax be poured to make candles?"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def test_a_follow_up_is_searched_with_the_earlier_turns_without_a_language_model_real_model(sample_kb):
    alone = sample_kb.ask(FOLLOW_UP)  # what kb did before: the last message alone
    assert _name(alone.citations[0].source) == "varroa_mites.html" and "formic" in alone.answer.lower()

    answer = sample_kb.ask(FOLLOW_UP, history=EARLIER)
    assert _name(answer.citations[0].source) == "beeswax_candles.txt"
    assert "75" in answer.answer
    body = answer.to_json()
    assert body["question"] == FOLLOW_UP and body["standalone_method"] == "weighted"
    assert body["standalone_question"] == f"{FIRST} {FOLLOW_UP}"  # the user turns, oldest first
    assert "condense" not in body["latency_ms"]
    assert sample_kb.ask(FOLLOW_UP, history=EARLIER).cached is True
    assert sample_kb.ask(FOLLOW_UP, history=EARLIER[:1] + [{"role": "user", "content": "And honey?"}]).cached is False


def _model(body: dict) -> str:
    """The test server playing a model: it condenses, or it answers from passage [1]."""
    if body["messages"][0]["content"] == CONDENSE_SYSTEM:
        return CONDENSED
    return "Pour the wax at about 75 °C [1]."


def test_with_a_language_model_the_follow_up_is_condensed_real_model(
    sample_kb, fake_openai, kb_home, monkeypatch, make_kb
):
    write_config(kb_home, provider_config(fake_openai.url))
    monkeypatch.setenv("KB_TEST_KEY", "sk-test-1234567890abcdef")
    fake_openai.respond = _model
    kb = make_kb()
    answer = kb.ask(FOLLOW_UP, history=EARLIER)

    condense, generate = fake_openai.requests
    assert condense["messages"][0]["content"] == CONDENSE_SYSTEM
    prompt = condense["messages"][1]["content"]
    assert (
        f"User: {FIRST}" in prompt and "Assistant: Render old comb" in prompt and f"Last message: {FOLLOW_UP}" in prompt
    )
    body = answer.to_json()
    assert (body["standalone_question"], body["standalone_method"]) == (CONDENSED, "condensed")
    assert _name(answer.citations[0].source) == "beeswax_candles.txt" and "75 °C" in answer.citations[0].text
    # The history reaches the answer's prompt, before the passages and the question.
    roles = [m["role"] for m in generate["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert generate["messages"][1]["content"] == FIRST and generate["messages"][3]["content"].endswith(FOLLOW_UP)
    assert "75 °C" in generate["messages"][3]["content"]
    assert [(a.provider, a.stage, a.outcome) for a in answer.attempts] == [
        ("primary", "condense", "ok"), ("primary", "answer", "ok"),
    ]  # fmt: skip
    assert set(body["latency_ms"]) == {"condense", "retrieve", "generate", "total"}
    assert answer.usage.output_tokens > 0
    assert kb.ask(FOLLOW_UP, history=EARLIER).cached is True and fake_openai.hits == 2


def test_when_no_model_condenses_the_turns_are_weighted_and_the_answer_not_cached_real_model(
    sample_kb, fake_openai, kb_home, monkeypatch, make_kb
):
    write_config(kb_home, provider_config(fake_openai.url, max_retries=0))
    monkeypatch.setenv("KB_TEST_KEY", "sk-test-1234567890abcdef")
    fake_openai.respond = _model
    fake_openai.script = ["500"]  # the condensing call fails; the answer is the model's
    kb = make_kb()
    answer = kb.ask(FOLLOW_UP, history=EARLIER)
    assert answer.standalone_method == "weighted" and _name(answer.citations[0].source) == "beeswax_candles.txt"
    assert [(a.stage, a.outcome) for a in answer.attempts] == [("condense", "error"), ("answer", "ok")]
    assert kb.ask(FOLLOW_UP, history=EARLIER).standalone_method == "condensed"  # not served from the cache


def test_a_forced_extractive_provider_weights_the_turns(sample_kb, fake_openai, kb_home, monkeypatch, make_kb):
    write_config(kb_home, provider_config(fake_openai.url))
    monkeypatch.setenv("KB_TEST_KEY", "sk-test-1234567890abcdef")
    answer = make_kb().ask(FOLLOW_UP, history=EARLIER, provider="extractive")
    assert answer.standalone_method == "weighted" and fake_openai.hits == 0


def test_weighted_turns_and_history_cleaning():
    history = clean_history([{"role": "user", "content": f"q{i}"} for i in range(5)] + [Turn("assistant", " a  b ")])
    assert history[-1] == Turn("assistant", "a b")
    query = weighted(history, "last")
    assert query.parts == (("q2", 0.0625), ("q3", 0.125), ("q4", 0.25), ("last", 1.0))  # the assistant's turn left out
    assert query.text == "q2 q3 q4 last" and query.keyword_text.startswith("last q4 q3")
    assert weighted((Turn("assistant", "hello"),), "last").parts == ()
    assert clean_history([{"role": "user", "content": "   "}]) == ()
    assert len(clean_history([{"role": "user", "content": "x"}] * 80)) == 50
    assert clean_history([{"role": "user", "content": "y" * 9000 + "end"}])[0].content.endswith("end")
    for bad in ({"role": "system", "content": "x"}, {"role": "user", "content": "\ud800"}):
        with pytest.raises(InputError) as caught:
            clean_history([bad])
        assert caught.value.details["field"] == "history"
    assert standalone_text('Standalone question: "Is it hot?"\nmore', 100) == "Is it hot?"
    assert standalone_text("  \n", 100) is None


def _hit(n: int) -> Hit:
    return Hit(n, 1.0, f"c{n}", "/docs/a.md", "passage text " * 40)


def test_the_history_in_the_prompt_is_bounded_by_the_context():
    history = tuple(Turn("user" if i % 2 == 0 else "assistant", f"turn {i} " + "word " * 200) for i in range(40))
    messages, given = Prompt("the question?", [_hit(n) for n in range(1, 6)], history).render(4096, 512)
    earlier = messages[1:-1]
    assert given == 5 and 0 < len(earlier) < 40  # the newest turns that fit, and every passage
    assert earlier[-1]["content"].startswith("turn 39") and earlier[0]["role"] == "user"
    assert sum(len(m["content"]) for m in messages) / 3.5 <= 4096 - 512
    assert "conversation so far" in messages[0]["content"]
    single, _ = Prompt("q?", [_hit(1)]).render(4096, 512)
    assert len(single) == 2 and "conversation" not in single[0]["content"]  # no history: the prompt as before
    merged, _ = Prompt("q?", [_hit(1)], (Turn("assistant", "hi"), Turn("user", "a"), Turn("user", "b"))).render(
        4096, 512
    )
    assert [m["role"] for m in merged] == ["system", "user", "user"] and merged[1]["content"] == "a\n\nb"
    condense, _ = CondensePrompt(history, "and then?").render(2048, 512)
    assert "Last message: and then?" in condense[1]["content"] and "turn 39" in condense[1]["content"]
    assert "turn 0 " not in condense[1]["content"]
