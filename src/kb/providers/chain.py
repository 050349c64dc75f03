"""Build the provider chain from settings. It reads like the diagram:

Fallback([Breaker(Retrying(OpenAIProvider)), ..., ExtractiveProvider])
"""

from __future__ import annotations

from collections.abc import Callable

from kb.config import ProviderSettings, Settings
from kb.errors import ProviderNotFound
from kb.providers.breaker import Breaker, BreakerBoard
from kb.providers.fallback import Fallback
from kb.providers.retrying import Retrying


def _provider(p: ProviderSettings, embed: Callable):
    if p.kind == "openai":
        from kb.providers.openai_compat import OpenAIProvider

        return OpenAIProvider(p)
    if p.kind == "llamacpp":
        from kb.providers.llamacpp import LlamaCppProvider

        return LlamaCppProvider(p)
    from kb.providers.extractive import ExtractiveProvider

    return ExtractiveProvider(p.name, embed)


def _link(p: ProviderSettings, board: BreakerBoard, embed: Callable, only: str | None):
    provider = _provider(p, embed)
    if p.kind != "extractive":
        # the deadline covers the retries; each HTTP call has timeout_s
        provider = Retrying(provider, p.max_retries, deadline_s=p.timeout_s * (p.max_retries + 1))
        if not only:
            provider = Breaker(provider, board)
    return provider


def build_chain(settings: Settings, board: BreakerBoard, embed: Callable, only: str | None = None) -> Fallback:
    """The chain; with `only`, that one provider, tried even if its breaker is open."""
    links = [_link(p, board, embed, only) for p in settings.providers if not only or p.name == only]
    if not links:
        names = ", ".join(p.name for p in settings.providers)
        raise ProviderNotFound(f"no provider named {only!r}; configured: {names}", provider=only)
    return Fallback(links, settings.secrets())


def language_models(settings: Settings, board: BreakerBoard, only: str | None = None) -> Fallback | None:
    """The chain's language models alone (every link but the extractive answerer), with their
    retries and breakers, for what only a model can do (condensing a conversation); None
    when the chain (or the one provider `only` names) has none."""
    links = [
        _link(p, board, lambda texts: None, only)
        for p in settings.providers
        if p.kind != "extractive" and (not only or p.name == only)
    ]
    return Fallback(links, settings.secrets()) if links else None


def chain_fingerprint(settings: Settings, only: str | None) -> str:
    """What about the chain can change an answer; part of the answer-cache key."""
    parts = [
        f"{p.name}|{p.kind}|{p.base_url}|{p.model}|{p.max_tokens}|{p.temperature}|{p.model_path}"
        for p in settings.providers
        if not only or p.name == only
    ]
    return "\n".join(parts)
