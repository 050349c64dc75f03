"""GET /metrics: the instance's figures in Prometheus' text format (prometheus-client).

Counted as requests pass: requests and latency per route and status, ask latency per
stage, tokens and cost per provider, answer-cache hits, the top-1 similarity of searches
and questions (the drift signal), and the reranker's calls by outcome (`ok`; `error` and
`skipped`, its breaker open, are searches that fell back to the fused order), from the
metrics events the core records. Read at each scrape: breaker state per provider, queue
depth, and jobs per state. Each instance keeps its own registry; a Prometheus server
scraping every instance sums them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.documents import Hit
    from kb.home import Home
    from kb.service.batching import Batcher

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BREAKER = {"closed": 0, "half_open": 1, "open": 2}


class _AtScrape(Collector):
    """Figures that live in shared state, read when Prometheus asks."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def collect(self) -> Iterator[Any]:
        breakers = GaugeMetricFamily(
            "kb_breaker_state", "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.", labels=["provider"]
        )
        for provider, board in self.home.breakers.states().items():
            breakers.add_metric([provider], _BREAKER.get(board["state"], 0))
        yield breakers
        depth = GaugeMetricFamily("kb_queue_depth", "Jobs and deliveries waiting for a worker.")
        with contextlib.suppress(Exception):  # an unreadable queue shows in /readyz, not as a scrape error
            depth.add_metric([], self.home.queue.depth())
        yield depth
        jobs = GaugeMetricFamily("kb_jobs", "Background jobs per state (the most recent 1,000).", labels=["state"])
        counts = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        for job in self.home.jobs.recent(limit=1000):
            counts[job.state] = counts.get(job.state, 0) + 1
        for state, n in counts.items():
            jobs.add_metric([state], n)
        yield jobs


class _Batches(Collector):
    """How many calls of the core answered how many searches and embedding inputs (their
    ratio is the batch size the load reaches; service/batching.py)."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher

    def collect(self) -> Iterator[Any]:
        calls = CounterMetricFamily("kb_batched_calls", "Calls of the core made for batched requests.")
        calls.add_metric([], self.batcher.calls)
        yield calls
        items = CounterMetricFamily("kb_batched_items", "Queries and inputs those calls carried.")
        items.add_metric([], self.batcher.items)
        yield items


class Observability:
    def __init__(self, home: Home) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("kb_http_requests", "HTTP requests.", ["route", "method", "status"], registry=r)
        self.latency = Histogram("kb_http_request_seconds", "HTTP request latency.", ["route"], buckets=_LATENCY,
                                 registry=r)  # fmt: skip
        self.ask_stage = Histogram("kb_ask_stage_seconds", "kb ask latency per stage.", ["stage"], buckets=_LATENCY,
                                   registry=r)  # fmt: skip
        self.tokens = Counter("kb_tokens", "Tokens per provider.", ["provider", "direction"], registry=r)
        self.cost = Counter("kb_cost_usd", "Provider cost in USD.", ["provider"], registry=r)
        self.cache = Counter("kb_answer_cache", "Answers from the cache (hit) or generated (miss).", ["result"],
                             registry=r)  # fmt: skip
        self.top1 = Histogram("kb_top1_similarity", "Similarity of the best passage per search or question.",
                              buckets=[i / 20 for i in range(-4, 21)], registry=r)  # fmt: skip
        self.reranker = Counter("kb_reranker_calls", "Reranker calls by outcome: ok, or error and skipped (breaker "
                                "open), when search fell back to the fused order.", ["outcome"], registry=r)  # fmt: skip
        r.register(_AtScrape(home))
        home.listeners.append(self.recorded)

    def recorded(self, event: Any) -> None:
        """A metrics event of the core (a search, a question): its reranker attempts."""
        for attempt in event.attempts:
            if attempt.stage == "rerank":
                self.reranker.labels(attempt.outcome).inc()

    def watch(self, batcher: Batcher) -> None:
        self.registry.register(_Batches(batcher))

    def request(self, route: str, method: str, status: int, started: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(time.perf_counter() - started)

    def refused(self, route: str, method: str, status: int) -> None:
        """A request the guards answered themselves (401, 413, 429): counted, not timed."""
        self.requests.labels(route, method, str(status)).inc()

    def searched(self, hits: list[Hit]) -> None:
        # The best dense similarity among the hits: in hybrid and keyword modes the first
        # hit's score is a rank-fusion or bm25 score, not a similarity.
        best = max((h.similarity for h in hits if h.similarity is not None), default=None)
        if best is not None:
            self.top1.observe(best)

    def answered(self, answer: Answer) -> None:
        self.cache.labels("hit" if answer.cached else "miss").inc()
        if answer.cached:
            return
        for stage in ("retrieve", "generate"):
            self.ask_stage.labels(stage).observe(answer.latency_ms.get(stage, 0.0) / 1000)
        u = answer.usage
        self.tokens.labels(answer.provider, "input").inc(u.input_tokens or 0)
        self.tokens.labels(answer.provider, "output").inc(u.output_tokens or 0)
        if u.cost_usd:
            self.cost.labels(answer.provider).inc(u.cost_usd)
        if answer.top1 is not None:
            self.top1.observe(answer.top1)

    def text(self) -> bytes:
        return generate_latest(self.registry)
