"""Retries with exponential backoff and jitter, for retryable errors only.

A 429's Retry-After is honoured when it fits in the deadline; when it does not, the
error goes up at once so the chain can move on instead of sleeping. `retried` is the policy,
for any call (the reranker and remote embeddings use it too); `Retrying` wraps a provider with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kb.errors import ProviderError, RateLimited
from kb.providers.base import Completion, CompletionRequest

BACKOFF_INITIAL_S = 0.25
BACKOFF_MAX_S = 4.0

T = TypeVar("T")


def retried(call: Callable[[], T], max_retries: int, deadline_s: float) -> T:
    """`call()`, repeated on retryable ProviderErrors up to `max_retries` times while the
    waits fit in `deadline_s` (counted from now)."""
    from tenacity import Retrying as TenacityRetrying
    from tenacity import retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential_jitter

    backoff = wait_exponential_jitter(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S)
    started = time.monotonic()

    def wait(state) -> float:
        exc = state.outcome.exception()
        delay = backoff(state)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = exc.retry_after
        if time.monotonic() - started + delay > deadline_s:
            raise exc  # waiting would overrun the deadline: let the next provider answer
        return delay

    retryer = TenacityRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
        stop=stop_after_attempt(max_retries + 1) | stop_after_delay(deadline_s),
        wait=wait,
        reraise=True,
    )
    return retryer(call)


class Retrying:
    def __init__(self, inner, max_retries: int, deadline_s: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_retries = max_retries
        self.deadline_s = deadline_s

    def complete(self, request: CompletionRequest) -> Completion:
        return retried(lambda: self.inner.complete(request), self.max_retries, self.deadline_s)
