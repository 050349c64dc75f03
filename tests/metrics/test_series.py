"""`kb stats --series`: the events of a window in buckets aligned to their width, each with
the figures a chart draws; and the CLI's table and JSON of them."""

from __future__ import annotations

import pytest

from kb.errors import InputError
from kb.metrics.series import MAX_BUCKETS, compute_series, edges, series
from kb.metrics.store import Event, MetricsStore

HOUR = 3600.0
NOW = 1_700_006_400.0 + 1234.5  # 20 min 34.5 s into an hour (1_700_006_400 is a whole hour)


def test_edges_are_multiples_of_the_width_and_cover_the_window():
    first, width, count = edges("1h", "15m", NOW)
    assert width == 900 and first % 900 == 0
    assert first <= NOW - HOUR < first + width  # the first bucket holds the window's start
    assert first + (count - 1) * width <= NOW < first + count * width  # the last holds now
    assert count == 5
    assert edges(None, "1h", NOW)[2] == 25  # 24 h by default: 24 whole hours and the one under way


def test_edges_refuse_a_zero_width_and_too_many_buckets():
    with pytest.raises(InputError, match="no width") as zero:
        edges("1h", "0s", NOW)
    assert zero.value.details["field"] == "series"
    with pytest.raises(InputError, match=f"more than {MAX_BUCKETS}; use wider buckets") as many:
        edges("7d", "1m", NOW)
    assert many.value.details["field"] == "series"
    with pytest.raises(InputError, match="not a duration"):
        edges("1h", "soon", NOW)
    with pytest.raises(InputError, match="not a duration") as since:
        edges("yesterday", "1h", NOW)
    assert since.value.details["field"] == "since"


def _row(ts: float, kind: str = "ask", total: float = 100.0, **fields) -> dict:
    base = {"ts": ts, "kind": kind, "total_ms": total, "cached": 0, "error": None, "top1": None,
            "input_tokens": None, "output_tokens": None, "cost_usd": None}  # fmt: skip
    return {**base, **fields}


def test_each_bucket_has_the_figures_of_its_events():
    first = 1_700_000_000.0 - 1_700_000_000.0 % 600
    rows = [
        _row(first + 10, total=100, input_tokens=300, output_tokens=40, cost_usd=0.001, top1=0.7),
        _row(first + 20, total=300, cached=1, top1=0.2, input_tokens=999, cost_usd=5.0),  # cached: spent nothing
        _row(first + 30, kind="search", total=20, top1=0.5),
        _row(first + 40, kind="ask", total=50, error="AllProvidersFailed"),
        _row(first + 1250, kind="ingest", total=9000),  # the third bucket
        _row(first + 1900, kind="search", total=1),  # beyond the last bucket: not counted
        _row(first - 1, kind="search", total=1),  # before the first: not counted
    ]
    out = compute_series(rows, [0.6, 0.8], first, 600.0, 3, low=0.35)
    assert out["bucket_s"] == 600 and out["low_match"] == 0.35
    assert [b["start"] for b in out["buckets"]] == [
        "2023-11-14T22:10:00+00:00", "2023-11-14T22:20:00+00:00", "2023-11-14T22:30:00+00:00"]  # fmt: skip
    assert out["since"] == out["buckets"][0]["start"] and out["until"] == "2023-11-14T22:40:00+00:00"
    assert out["baseline"] == {"n": 2, "mean": 0.7, "p50": 0.6, "low_match_share": 0.0}
    one, empty, third = out["buckets"]
    assert one["requests"] == {"ask": 3, "search": 1, "ingest": 0} and one["errors"] == 1
    assert one["latency_ms"]["ask"] == {"p50": 100, "p95": 300, "n": 3}
    assert one["latency_ms"]["search"] == {"p50": 20, "p95": 20, "n": 1}
    assert one["cache"] == {"asks": 3, "hits": 1, "hit_rate": 0.3333}
    assert one["usage"] == {"input_tokens": 300, "output_tokens": 40, "cost_usd": 0.001}
    assert one["top1"] == {"n": 3, "mean": 0.4667, "p50": 0.5, "low_match_share": 0.3333}
    assert empty["requests"] == {"ask": 0, "search": 0, "ingest": 0}
    assert empty["latency_ms"]["ask"] == {"p50": None, "p95": None, "n": 0}
    assert empty["cache"]["hit_rate"] is None and empty["top1"]["mean"] is None
    assert empty["usage"] == {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    assert third["requests"]["ingest"] == 1 and third["latency_ms"]["ingest"]["p50"] == 9000


def test_series_reads_the_store_from_the_first_edge_and_the_baseline_before_it(tmp_path):
    store = MetricsStore(tmp_path / "metrics.db")
    for ts, kb, top1 in ((NOW - 5 * HOUR, "bees", 0.9), (NOW - 1.5 * HOUR, "bees", 0.8), (NOW - 60, "bees", 0.4),
                         (NOW - 30, "wasps", 0.1)):  # fmt: skip
        store.record(Event("search", kb, 10.0, top1=top1, ts=ts))
    out = series(store, "bees", "2h", "1h", 0.35, now=NOW)
    assert out["buckets"][0]["start"] == "2023-11-14T22:00:00+00:00"  # 2h ago is 22:20:34.5
    assert [b["requests"]["search"] for b in out["buckets"]] == [1, 0, 1]
    assert out["baseline"]["n"] == 1 and out["baseline"]["mean"] == 0.9
    every = series(store, None, "2h", "1h", 0.35, now=NOW)
    assert [b["requests"]["search"] for b in every["buckets"]] == [1, 0, 2]
    assert series(None, "bees", "2h", "1h", 0.35, now=NOW)["buckets"][2]["requests"]["search"] == 0
    store.close()


def test_cli_prints_the_series_as_a_table_and_as_json_hash_embedder(tmp_path, make_kb, cli):
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red and sweet.\n\nBananas are yellow.\n")
    kb = make_kb(model="hash")
    kb.ingest([tmp_path])
    kb.search_many(["apples", "bananas"])
    kb.ask("Which fruit is red?")
    data = cli("stats", "--series", "10m", "--since", "1h", "--json").json()
    assert len(data["buckets"]) in (7, 8) and data["bucket_s"] == 600
    last = data["buckets"][-1]
    assert last["requests"] == {"ask": 1, "search": 2, "ingest": 1}
    assert set(data) == {"since", "until", "bucket_s", "low_match", "baseline", "buckets"}
    table = cli("stats", "--series", "10m", "--since", "1h")
    assert table.code == 0 and "buckets of 600s" in table.out and "drift baseline" in table.out
    refused = cli("stats", "--series", "1s", "--since", "1d")
    assert refused.code == 2 and "--series '1s' cuts 1d into 86401 buckets" in refused.err
