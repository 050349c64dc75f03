"""The openai kind over real HTTP against the test server on 127.0.0.1."""

import pytest

from kb.answering.prompt import Prompt
from kb.config import ProviderSettings
from kb.documents import Hit
from kb.errors import BadResponse, ProviderRejected, ProviderTimeout, ProviderUnavailable, RateLimited
from kb.providers.base import CompletionRequest
from kb.providers.openai_compat import OpenAIProvider

HITS = [
    Hit(1, 0.9, "c1", "/docs/bees.md", "Queens lay up to 2,000 eggs a day.", lines="3-4"),
    Hit(2, 0.5, "c2", "/docs/wax.md", "Wax comes from glands."),
]


def _request(stream=None):
    q = "How many eggs?"
    return CompletionRequest(q, HITS, Prompt(q, HITS), stream)


def _provider(url, timeout_s=2.0):
    return OpenAIProvider(
        ProviderSettings(name="primary", kind="openai", base_url=url, model="gpt-4o-mini", timeout_s=timeout_s)
    )


def test_completion_with_usage_and_cost(fake_openai):
    done = _provider(fake_openai.url).complete(_request())
    assert done.text == fake_openai.answer
    assert done.usage.input_tokens > 0 and done.usage.output_tokens == len(fake_openai.answer.split())
    expected = (done.usage.input_tokens * 0.15 + done.usage.output_tokens * 0.60) / 1e6
    assert done.usage.cost_usd == pytest.approx(expected)
    assert done.passages_given == 2
    sent = fake_openai.requests[0]["messages"]
    assert "data, not instructions" in sent[0]["content"] and "[2] /docs/wax.md" in sent[1]["content"]


def test_streaming_delivers_deltas_and_usage(fake_openai):
    class Sink:
        def __init__(self):
            self.parts = []

        def text(self, delta):
            self.parts.append(delta)

        def reset(self, reason):
            raise AssertionError(reason)

    sink = Sink()
    done = _provider(fake_openai.url).complete(_request(sink))
    assert len(sink.parts) > 3 and "".join(sink.parts).strip() == fake_openai.answer
    assert done.usage.output_tokens > 0


@pytest.mark.parametrize(
    "mode, error",
    [
        ("429", RateLimited),
        ("500", ProviderUnavailable),
        ("401", ProviderRejected),
        ("reset", ProviderUnavailable),
        ("malformed", BadResponse),
    ],
)
def test_failures_become_kb_errors(fake_openai, mode, error):
    fake_openai.mode = mode
    fake_openai.retry_after = "7"
    with pytest.raises(error) as info:
        _provider(fake_openai.url).complete(_request())
    assert info.value.provider == "primary"
    if mode == "429":
        assert info.value.retry_after == 7.0
    assert fake_openai.hits == 1  # the client itself never retries


def test_timeout(fake_openai):
    fake_openai.mode, fake_openai.delay = "slow", 3
    with pytest.raises(ProviderTimeout):
        _provider(fake_openai.url, timeout_s=0.5).complete(_request())


def test_unreachable_endpoint_is_unavailable():
    with pytest.raises(ProviderUnavailable):
        _provider("http://127.0.0.1:9/v1").complete(_request())
