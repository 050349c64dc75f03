"""The metrics store on both backends (tests/backends.py): the same rows for the same events."""

from __future__ import annotations

import time

import pytest

from kb.errors import StoreError
from kb.metrics.stats import compute
from kb.metrics.store import MetricsStore, RedisMetricsStore
from kb.providers.base import Attempt
from tests.backends import together

T0 = 1_700_000_000.0


def _events() -> list:
    from kb.metrics.store import Event

    return [
        Event("ask", "bees", 120.5, retrieve_ms=20.25, generate_ms=100.25, provider="primary", model="gpt",
              input_tokens=300, output_tokens=40, cost_usd=0.000123, top1=0.71, ts=T0 + 1,
              attempts=[Attempt("primary", "error", "timeout", 2000.0, "primary: no answer in 2s"),
                        Attempt("backup", "ok", None, 90.5)]),
        Event("search", "bees", 15.0, retrieve_ms=15.0, top1=0.42, ts=T0 + 2),
        Event("ask", "wasps", 3.0, cached=True, top1=0.9, ts=T0 + 3),
        Event("ingest", "bees", 50_000.0, model="minilm", chunks=1000, ts=T0 + 4),
        Event("ask", "bees", 80.0, error="AllProvidersFailed", top1=None, ts=T0 + 5,
              attempts=[Attempt("primary", "skipped", "circuit_open", 0.0)]),
        Event("ingest", "wasps", 10_000.0, model="minilm", chunks=250, ts=T0 + 6),
        Event("ingest", "wasps", 10.0, model="minilm", chunks=5, ts=T0 + 7),  # too small to measure
        Event("ingest", "bees", 1_000.0, model="other", chunks=500, ts=T0 + 8),
    ]  # fmt: skip


def _recorded(store) -> None:
    for event in _events():
        store.record(event)


def test_rows_have_the_columns_and_order_of_the_embedded_store(backend):
    store = backend.metrics()
    assert store.readonly is False
    _recorded(store)
    reader = backend.metrics()  # another instance reads what this one wrote
    events = reader.events(None)
    assert [e["ts"] for e in events] == [T0 + i for i in range(1, 9)]
    first = events[0]
    assert list(first) == ["id", "ts", "kind", "kb", "retrieve_ms", "generate_ms", "total_ms", "provider", "model",
                           "input_tokens", "output_tokens", "cost_usd", "cached", "error", "top1", "chunks"]  # fmt: skip
    assert {k: v for k, v in first.items() if k != "id"} == {
        "ts": T0 + 1, "kind": "ask", "kb": "bees", "retrieve_ms": 20.25, "generate_ms": 100.25, "total_ms": 120.5,
        "provider": "primary", "model": "gpt", "input_tokens": 300, "output_tokens": 40, "cost_usd": 0.000123,
        "cached": 0, "error": None, "top1": 0.71, "chunks": None,
    }  # fmt: skip
    assert events[2]["cached"] == 1
    assert len({e["id"] for e in events}) == 8
    assert reader.attempts("bees") == [
        {"provider": "primary", "outcome": "error", "error": "timeout", "message": "primary: no answer in 2s",
         "latency_ms": 2000.0},
        {"provider": "backup", "outcome": "ok", "error": None, "message": None, "latency_ms": 90.5},
        {"provider": "primary", "outcome": "skipped", "error": "circuit_open", "message": None, "latency_ms": 0.0},
    ]  # fmt: skip


def test_reads_cover_one_kb_or_all_from_a_time_on(backend):
    store = backend.metrics()
    _recorded(store)
    assert [e["ts"] for e in store.events("wasps")] == [T0 + 3, T0 + 6, T0 + 7]
    assert [e["ts"] for e in store.events("bees", since=T0 + 4)] == [T0 + 4, T0 + 5, T0 + 8]  # since is inclusive
    assert [a["outcome"] for a in store.attempts(None, since=T0 + 2)] == ["skipped"]
    assert store.attempts("wasps") == []
    assert store.events("nobody") == []
    assert store.top1_before("bees", T0 + 5) == [0.71, 0.42]  # before is exclusive; no None
    assert store.top1_before(None, T0 + 3.5) == [0.71, 0.42, 0.9]
    assert store.top1_before(None, T0) == []


def test_ingest_rate_takes_the_last_ingests_with_the_model_that_embedded_enough(backend):
    store = backend.metrics()
    assert store.ingest_rate("minilm") is None
    _recorded(store)
    rate, runs = store.ingest_rate("minilm")
    assert runs == 2 and rate == pytest.approx(1250 / 60)
    assert store.ingest_rate("minilm", last=1) == (pytest.approx(250 / 10), 1)  # the newest
    assert store.ingest_rate("other") == (pytest.approx(500.0), 1)
    assert store.ingest_rate("unknown") is None


def test_both_backends_give_kb_stats_the_same_figures(tmp_path, redis_backend):
    embedded = MetricsStore(tmp_path / "metrics.db")
    shared = redis_backend.metrics()
    figures = []
    for store in (embedded, shared):
        _recorded(store)
        figures.append(compute(store.events("bees"), store.attempts("bees"), {}, store.top1_before("bees", T0 + 2),
                               0.3))  # fmt: skip
    embedded.close()
    assert figures[0] == figures[1]
    assert figures[0]["requests"] == {"ask": 2, "search": 1, "ingest": 2}


def test_events_alike_in_every_field_are_all_kept_in_the_order_recorded(backend):
    from kb.metrics.store import Event

    store = backend.metrics()
    for kb in ("a", "a", "b", "a"):
        store.record(Event("search", kb, 1.0, ts=T0))
    assert [e["kb"] for e in store.events(None)] == ["a", "a", "b", "a"]


def test_concurrent_records_from_many_instances_are_all_kept(backend):
    from kb.metrics.store import Event

    stores = [backend.metrics() for _ in range(4)]

    def write(store, n) -> None:
        for i in range(50):
            store.record(Event("search", f"kb{n}", 1.0, ts=T0 + i))

    together(write, [(s, n) for n, s in enumerate(stores)])
    assert len(stores[0].events(None)) == 200
    assert len(stores[0].events("kb2")) == 50


def test_redis_keeps_only_the_newest_events(redis_backend):
    from kb.metrics.store import Event

    store = redis_backend.metrics(max_events=5)
    for i in range(12):
        store.record(Event("search", "bees", float(i), ts=T0 + i))
    assert [e["total_ms"] for e in store.events(None)] == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert RedisMetricsStore.MAX_EVENTS == 200_000


def test_redis_down_is_a_store_error_naming_the_server_then_works_again(redis_backend, redis_outage, redis_server):
    from kb.metrics.store import Event

    store = redis_backend.metrics()
    store.record(Event("search", "bees", 1.0))
    redis_outage.stop()
    for call in (lambda: store.record(Event("search", "bees", 2.0)), lambda: store.events(None),
                 lambda: store.ingest_rate("m")):  # fmt: skip
        with pytest.raises(StoreError, match=f"shared state at {redis_server.url} is unreachable"):
            call()
    redis_outage.start()
    store.record(Event("search", "bees", 3.0, ts=time.time() + 1))  # the script is loaded again after the restart
    assert [e["total_ms"] for e in store.events("bees")] == [1.0, 3.0]


def test_both_backends_give_the_same_series(tmp_path, redis_backend):
    from kb.metrics.series import series

    embedded = MetricsStore(tmp_path / "metrics.db")
    shared = redis_backend.metrics()
    figures = []
    for store in (embedded, shared):
        _recorded(store)
        figures.append(series(store, "bees", "4s", "2s", 0.3, now=T0 + 7.5))  # buckets from T0+2 to T0+8
    embedded.close()
    assert figures[0] == figures[1]
    assert [sum(b["requests"].values()) for b in figures[0]["buckets"]] == [1, 2, 0]  # T0+8 is past now
    assert figures[0]["baseline"] == {"n": 1, "mean": 0.71, "p50": 0.71, "low_match_share": 0.0}  # T0+1


def test_series_reads_what_another_instance_wrote(backend):
    from kb.metrics.series import series

    _recorded(backend.metrics())
    out = series(backend.metrics(), None, "10s", "5s", 0.3, now=T0 + 9)
    assert [b["requests"] for b in out["buckets"]] == [
        {"ask": 0, "search": 0, "ingest": 0},  # from T0-5: the edge before the window's start
        {"ask": 2, "search": 1, "ingest": 1},
        {"ask": 1, "search": 0, "ingest": 3},
    ]
    assert out["buckets"][1]["usage"]["input_tokens"] == 300 and out["buckets"][1]["cache"]["hits"] == 1
