"""Retrying, Breaker and Fallback against the test server (fake only at the network seam)."""

import time

import pytest

from kb.cli import advice
from kb.config import ProviderSettings
from kb.errors import AllProvidersFailed, CircuitOpen, ProviderRejected, RateLimited
from kb.providers.base import Completion
from kb.providers.breaker import Breaker, SqliteBreakerBoard
from kb.providers.fallback import Fallback
from kb.providers.openai_compat import OpenAIProvider
from kb.providers.retrying import Retrying
from tests.backends import ManualClock
from tests.providers.test_openai_provider import _request


def _retrying(url, retries=2, deadline=10.0):
    inner = OpenAIProvider(ProviderSettings(name="primary", base_url=url, model="m", timeout_s=2))
    return Retrying(inner, retries, deadline)


def test_retries_retryable_errors_then_succeeds(fake_openai):
    fake_openai.script = ["500", "reset"]
    done = _retrying(fake_openai.url).complete(_request())
    assert done.text == fake_openai.answer and fake_openai.hits == 3


def test_no_retry_on_auth_errors(fake_openai):
    fake_openai.mode = "401"
    with pytest.raises(ProviderRejected):
        _retrying(fake_openai.url).complete(_request())
    assert fake_openai.hits == 1


def test_429_retry_after_is_honoured(fake_openai):
    fake_openai.script, fake_openai.retry_after = ["429"], "1"
    started = time.monotonic()
    _retrying(fake_openai.url).complete(_request())
    assert time.monotonic() - started >= 1.0 and fake_openai.hits == 2


def test_429_retry_after_beyond_the_deadline_gives_up_at_once(fake_openai):
    fake_openai.mode, fake_openai.retry_after = "429", "120"
    with pytest.raises(RateLimited):
        _retrying(fake_openai.url, deadline=5).complete(_request())
    assert fake_openai.hits == 1


def test_breaker_opens_skips_and_recovers_through_half_open(backend):
    clock = ManualClock()
    board = backend.breakers(failure_threshold=2, cooldown_s=30, clock=clock)
    other_process = backend.breakers(failure_threshold=2, cooldown_s=30, clock=clock)  # or another machine
    board.acquire("p")
    board.failure("p")
    board.acquire("p")
    board.failure("p")
    assert board.states()["p"]["state"] == "open"
    clock.advance(29.9)
    with pytest.raises(CircuitOpen):
        other_process.acquire("p")
    clock.advance(0.2)
    board.acquire("p")  # this caller holds the half-open probe
    assert other_process.states()["p"]["state"] == "half_open"
    with pytest.raises(CircuitOpen, match="probing"):
        other_process.acquire("p")
    board.success("p")
    assert other_process.states()["p"] == {"state": "closed", "failures": 0, "opened_at": None}
    other_process.acquire("p")


def test_failed_half_open_probe_reopens(backend):
    clock = ManualClock()
    board = backend.breakers(failure_threshold=1, cooldown_s=30, clock=clock)
    board.failure("p")
    clock.advance(31)
    board.acquire("p")
    board.failure("p")
    assert board.states()["p"]["state"] == "open"
    with pytest.raises(CircuitOpen):
        board.acquire("p")
    clock.advance(29)
    with pytest.raises(CircuitOpen):  # a new cooldown, from the failed probe
        board.acquire("p")


def test_fallback_records_every_attempt(fake_openai, tmp_path):
    fake_openai.mode = "500"
    board = SqliteBreakerBoard(tmp_path / "b.db", failure_threshold=5, cooldown_s=30)

    class Backup:
        name = "backup"

        def complete(self, request):
            from kb.providers.base import Completion

            return Completion("from backup [1]", "backup", "b", passages_given=2)

    chain = Fallback([Breaker(_retrying(fake_openai.url, retries=1), board), Backup()])
    done = chain.complete(_request())
    assert done.provider == "backup"
    assert [(a.provider, a.outcome, a.error) for a in done.attempts] == [
        ("primary", "error", "unavailable"),
        ("backup", "ok", None),
    ]
    assert fake_openai.hits == 2


def test_all_failed_lists_attempts(fake_openai):
    fake_openai.mode = "401"
    with pytest.raises(AllProvidersFailed) as info:
        Fallback([_retrying(fake_openai.url)]).complete(_request())
    assert info.value.attempts[0].error == "rejected" and info.value.remedy == "providers"
    assert "config.toml" in advice.message(info.value)  # what the CLI says to do


def test_an_empty_answer_is_a_failure_of_that_link(fake_openai):
    fake_openai.mode = "empty"

    class Backup:
        name = "backup"

        def complete(self, request):
            return Completion(text="From the backup.", provider="backup", model="b")

    done = Fallback([_retrying(fake_openai.url, retries=1), Backup()]).complete(_request())
    assert done.provider == "backup"
    first = done.attempts[0]
    assert (first.provider, first.outcome, first.error) == ("primary", "error", "bad_response")
    assert first.message == "primary: the model returned an empty answer"
    assert fake_openai.hits == 2  # retried once, as any bad response is


def test_any_exception_a_provider_raises_fails_only_that_link():
    class Broken:
        name = "local"

        def complete(self, request):
            raise ValueError("Model path does not exist: /nowhere/model.gguf")

    class Backup:
        name = "backup"

        def complete(self, request):
            return Completion(text="From the backup.", provider="backup", model="b")

    done = Fallback([Broken(), Backup()]).complete(_request())
    assert done.provider == "backup"
    first = done.attempts[0]
    assert (first.outcome, first.error) == ("error", "crashed")
    assert first.message == "ValueError: Model path does not exist: /nowhere/model.gguf"


def test_attempt_messages_mask_secrets(fake_openai):
    class Leaky:
        name = "leaky"

        def complete(self, request):
            raise ProviderRejected("leaky: server said: bad key sk-live-abcdefghijklmnop", provider="leaky")

    with pytest.raises(AllProvidersFailed) as info:
        Fallback([Leaky()], secrets=["sk-live-abcdefghijklmnop"]).complete(_request())
    message = info.value.attempts[0].message
    assert "abcdefghijklmnop" not in message and "****mnop" in message
    assert "abcdefghijklmnop" not in str(info.value)
