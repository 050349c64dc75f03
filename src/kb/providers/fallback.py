"""Try providers in order; the first answer wins, and every attempt is recorded."""

from __future__ import annotations

import time

from kb.errors import AllProvidersFailed, CircuitOpen, ProviderError
from kb.providers.base import Attempt, Completion, CompletionRequest


class Fallback:
    name = "chain"

    def __init__(self, providers: list) -> None:
        self.providers = providers

    def complete(self, request: CompletionRequest) -> Completion:
        attempts: list[Attempt] = []
        for provider in self.providers:
            started = time.perf_counter()
            try:
                completion = provider.complete(request)
            except CircuitOpen:
                attempts.append(Attempt(provider.name, "skipped", "circuit_open", _ms(started)))
                continue
            except ProviderError as exc:
                attempts.append(Attempt(provider.name, "error", exc.kind, _ms(started)))
                continue
            attempts.append(Attempt(provider.name, "ok", None, _ms(started)))
            completion.attempts = attempts
            return completion
        summary = "; ".join(f"{a.provider}: {a.error}" for a in attempts)
        raise AllProvidersFailed(
            f"no provider answered ({summary}); check the [[providers]] entries in config.toml or run `kb stats`",
            attempts,
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
