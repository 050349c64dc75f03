"""The answering pipeline: cache → standalone question → retrieve → prompt → generate (the
provider chain) → verify citations → cache, with one metrics event per question.

The answer cache is keyed by everything that changes the answer: the question's cache form,
the conversation before it, the knowledge base and its content key, the model, the chain,
the search options (filter and reranker included), the ranking's and the prompt's versions.
A cached answer needs neither the model nor the store. A degraded answer (an earlier link of
the chain failed, the reranker fell back to the fused order, or no model condensed the
conversation) is not cached: once the preferred path is back, the same question should
take it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kb.errors import AllProvidersFailed
from kb.providers.base import Attempt, Usage

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.answering.conversation import Method, Turn
    from kb.cache import Cache
    from kb.config import Settings
    from kb.metrics.store import Event
    from kb.options import ResolvedSearch
    from kb.providers.breaker import BreakerBoard
    from kb.retrieval.query import Query
    from kb.retrieval.ranking import Ranked

Retrieve = Callable[["Query", "ResolvedSearch"], "Ranked"]


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@dataclass
class Standalone:
    """The question retrieval searches for, how it was formed, and what forming it cost."""

    query: Query
    method: Method
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    ms: float | None = None


def _sum(a: Usage, b: Usage) -> Usage:
    cost = None if a.cost_usd is None and b.cost_usd is None else (a.cost_usd or 0.0) + (b.cost_usd or 0.0)
    return Usage(a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens, cost)


@dataclass
class Answerer:
    """Answers the questions of one knowledge base. `retrieve` gives the ranked hits (with
    their milliseconds, the dense top-1 similarity and the reranker's attempt); `content_key`
    moves with every write; `require_content` raises for an empty knowledge base; `record`
    keeps a metrics event."""

    kb: str
    settings: Settings
    cache: Cache
    breakers: BreakerBoard
    embed: Callable[[list[str]], Any]
    model_id: str
    retrieve: Retrieve
    content_key: Callable[[], str]
    require_content: Callable[[], None]
    record: Callable[[Event], None]

    def answer(
        self,
        question: str,
        search: ResolvedSearch,
        provider: str | None,
        use_cache: bool,
        stream: Any,
        started: float,
        history: tuple[Turn, ...] = (),
    ) -> Answer:
        from kb.answering.prompt import PROMPT_VERSION
        from kb.answering.question import cache_form
        from kb.cache import answer_key
        from kb.providers.chain import chain_fingerprint
        from kb.rerankers import fingerprint
        from kb.retrieval.ranking import RANKING_VERSION

        key = answer_key(
            q=cache_form(question),
            history=[[t.role, cache_form(t.content)] for t in history],
            kb=self.kb,
            version=self.content_key(),
            model=self.model_id,
            chain=chain_fingerprint(self.settings, provider),
            k=search.k,
            mode=search.mode,
            unique_sources=search.unique_sources,
            filter=search.filter.to_json(),
            reranker=fingerprint(self.settings.reranker) if search.rerank else None,
            prompt=PROMPT_VERSION,
            ranking=RANKING_VERSION,
        )
        if use_cache:
            hit = self._cached(key, question, started)
            if hit is not None:
                return hit
        answer = self._generate(question, search, provider, stream, started, history)
        if use_cache and all(a.outcome == "ok" for a in answer.attempts):
            self.cache.set(key, answer)
        return answer

    def _cached(self, key: str, question: str, started: float) -> Answer | None:
        from kb.metrics.store import Event

        hit = self.cache.get(key)
        if hit is None:
            return None
        hit.question, hit.cached, hit.attempts = question, True, []
        hit.latency_ms = {"retrieve": 0.0, "generate": 0.0, "total": ms_since(started)}
        event = Event("ask", self.kb, hit.latency_ms["total"], provider=hit.provider, model=hit.model)
        event.cached, event.top1 = True, hit.top1
        self.record(event)
        return hit

    def _standalone(self, question: str, history: tuple[Turn, ...], provider: str | None) -> Standalone:
        """The question as the conversation means it (kb.answering.conversation)."""
        from kb.answering.conversation import CondensePrompt, standalone_text, weighted
        from kb.providers.base import CompletionRequest
        from kb.providers.chain import language_models
        from kb.retrieval.query import Query

        if not history:
            return Standalone(Query(question), "question")
        models = language_models(self.settings, self.breakers, provider)
        if models is None:
            return Standalone(weighted(history, question), "weighted")
        started = time.perf_counter()
        request = CompletionRequest(question=question, passages=[], prompt=CondensePrompt(history, question))
        text, usage = None, Usage()
        try:
            completion = models.complete(request)
            attempts, usage = completion.attempts, completion.usage
            text = standalone_text(completion.text, self.settings.max_question_chars)
        except AllProvidersFailed as exc:
            attempts = exc.attempts
        for attempt in attempts:
            attempt.stage = "condense"
        if text is None:
            return Standalone(weighted(history, question), "weighted", attempts, usage, ms_since(started))
        return Standalone(Query(text), "condensed", attempts, usage, ms_since(started))

    def _generate(
        self,
        question: str,
        search: ResolvedSearch,
        provider: str | None,
        stream: Any,
        started: float,
        history: tuple[Turn, ...],
    ) -> Answer:
        from kb.answering.answer import Answer
        from kb.answering.citations import verify
        from kb.answering.prompt import Prompt
        from kb.metrics.store import Event
        from kb.providers.base import CompletionRequest
        from kb.providers.chain import build_chain

        self.require_content()
        chain = build_chain(self.settings, self.breakers, self.embed, only=provider)
        standalone = self._standalone(question, history, provider)
        retrieved = self.retrieve(standalone.query, search)
        hits, earlier = retrieved.hits, standalone.attempts + retrieved.attempts
        prompt = Prompt(question, hits, history)
        request = CompletionRequest(question=standalone.query.text, passages=hits, prompt=prompt, stream=stream)
        generating = time.perf_counter()
        try:
            completion = chain.complete(request)
        except AllProvidersFailed as exc:
            event = Event("ask", self.kb, ms_since(started), retrieve_ms=retrieved.ms,
                          generate_ms=ms_since(generating))  # fmt: skip
            event.error, event.top1, event.attempts = exc.failure, retrieved.top1, earlier + exc.attempts
            self.record(event)
            raise
        generate_ms = ms_since(generating)
        text, citations, dropped = verify(completion.text, hits, completion.passages_given)
        latency = {"retrieve": retrieved.ms, "generate": generate_ms, "total": ms_since(started)}
        if standalone.ms is not None:
            latency = {"condense": standalone.ms, **latency}
        usage = _sum(completion.usage, standalone.usage)
        attempts = earlier + completion.attempts
        answer = Answer(
            question, text, citations, completion.provider, completion.model, usage, latency, attempts,
            dropped_citations=dropped, top1=retrieved.top1, standalone_question=standalone.query.text,
            standalone_method=standalone.method,
        )  # fmt: skip
        event = Event(
            "ask", self.kb, latency["total"], retrieved.ms, generate_ms, completion.provider, completion.model
        )
        event.input_tokens, event.output_tokens, event.cost_usd = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cost_usd,
        )
        event.top1, event.attempts = retrieved.top1, attempts
        self.record(event)
        return answer
