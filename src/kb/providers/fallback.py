"""Try providers in order; the first answer wins, and every attempt is recorded.

Whatever a link raises is that link's failure: kb's own errors keep their kind, anything
else (a library raising ValueError for a bad model file) counts as `crashed`. Each attempt
keeps a one-line message for the user, with every configured secret masked.
"""

from __future__ import annotations

import time

from kb.config.settings import mask
from kb.errors import AllProvidersFailed, CircuitOpen, ProviderError
from kb.providers.base import Attempt, Completion, CompletionRequest


class Fallback:
    name = "chain"

    def __init__(self, providers: list, secrets: list[str] | None = None) -> None:
        self.providers = providers
        self.secrets = [s for s in secrets or [] if s]

    def _message(self, exc: Exception) -> str:
        text = str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
        for secret in self.secrets:
            text = text.replace(secret, mask(secret))
        return " ".join(text.split())[:500]

    def complete(self, request: CompletionRequest) -> Completion:
        attempts: list[Attempt] = []
        for provider in self.providers:
            started = time.perf_counter()
            try:
                completion = provider.complete(request)
            except CircuitOpen as exc:
                attempts.append(Attempt(provider.name, "skipped", exc.failure, _ms(started), self._message(exc)))
                continue
            except Exception as exc:
                kind = exc.failure if isinstance(exc, ProviderError) else "crashed"
                attempts.append(Attempt(provider.name, "error", kind, _ms(started), self._message(exc)))
                continue
            attempts.append(Attempt(provider.name, "ok", None, _ms(started)))
            completion.attempts = attempts
            return completion
        summary = "; ".join(f"{a.provider}: {a.message or a.error}" for a in attempts)
        raise AllProvidersFailed(f"no provider answered ({summary})", attempts)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
