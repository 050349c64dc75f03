"""`kb stats` over time: the events of a window cut into buckets of one width, each with the
figures a chart draws (requests, errors, latency p50/p95, cache hits, tokens and cost, and
the top-1 similarity that drift is measured on).

Bucket edges are multiples of the width since the epoch, so two calls a minute apart cut
the same buckets and a chart does not shift under its reader; the window is widened back to
the first edge, so the first bucket is as complete as the others. The drift baseline is
every top-1 similarity before that edge, as `kb stats --since` takes it.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kb.errors import InputError
from kb.metrics.stats import percentile, similarity_summary
from kb.options import duration_s

if TYPE_CHECKING:
    from kb.metrics.store import Metrics

MAX_BUCKETS = 1000  # a chart a few thousand pixels wide; more is a mistake in the request
DEFAULT_SINCE = "24h"
KINDS = ("ask", "search", "ingest")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def edges(since: str | None, bucket: str, now: float) -> tuple[float, float, int]:
    """The first bucket's start, the width and the number of buckets, or InputError naming
    the field at fault."""
    width = duration_s(bucket, "series")
    if width <= 0:
        raise InputError(f"{bucket!r} is no width for a bucket; use e.g. 5m or 1h", field="series")
    window = duration_s(since or DEFAULT_SINCE, "since")
    first = math.floor((now - window) / width) * width
    count = math.floor(now / width) - math.floor((now - window) / width) + 1
    if count > MAX_BUCKETS:
        raise InputError(f"{bucket!r} cuts {since or DEFAULT_SINCE} into {count} buckets, more than {MAX_BUCKETS}; "
                         "use wider buckets or a shorter window", field="series")  # fmt: skip
    return first, width, count


def _bucket(start: float, events: list[dict[str, Any]], low: float) -> dict[str, Any]:
    asks = [e for e in events if e["kind"] == "ask"]
    hits = sum(1 for e in asks if e["cached"])
    spent = [e for e in asks if not e["cached"]]  # a cached answer cost nothing this time
    latency = {}
    for kind in KINDS:
        values = [e["total_ms"] for e in events if e["kind"] == kind and e["total_ms"] is not None]
        latency[kind] = {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}
    return {
        "start": _iso(start),
        "requests": {kind: sum(1 for e in events if e["kind"] == kind) for kind in KINDS},
        "errors": sum(1 for e in events if e["error"]),
        "latency_ms": latency,
        "cache": {"asks": len(asks), "hits": hits, "hit_rate": round(hits / len(asks), 4) if asks else None},
        "usage": {
            "input_tokens": sum(e["input_tokens"] or 0 for e in spent),
            "output_tokens": sum(e["output_tokens"] or 0 for e in spent),
            "cost_usd": round(sum((e["cost_usd"] or 0.0 for e in spent), 0.0), 8),
        },
        "top1": similarity_summary([e["top1"] for e in events if e["top1"] is not None], low),
    }


def compute_series(
    events: list[dict[str, Any]], baseline_top1: list[float], first: float, width: float, count: int, low: float
) -> dict[str, Any]:
    """The buckets of `events` (rows of the metrics store, from `first` on)."""
    grouped: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for e in events:
        index = math.floor((e["ts"] - first) / width)
        if 0 <= index < count:  # an event stamped ahead of this clock waits for its bucket
            grouped[index].append(e)
    return {
        "since": _iso(first),
        "until": _iso(first + count * width),
        "bucket_s": int(width) if width.is_integer() else width,
        "low_match": low,
        "baseline": similarity_summary(baseline_top1, low),
        "buckets": [_bucket(first + i * width, rows, low) for i, rows in enumerate(grouped)],
    }


def series(
    store: Metrics | None, kb: str | None, since: str | None, bucket: str, low: float, now: float | None = None
) -> dict[str, Any]:
    """The series of one knowledge base (or kb=None: of every one) over `since` (default 24h)
    in buckets of `bucket`, read from the metrics store (None: no metrics, empty buckets)."""
    first, width, count = edges(since, bucket, time.time() if now is None else now)
    if store is None:
        return compute_series([], [], first, width, count, low)
    return compute_series(store.events(kb, first), store.top1_before(kb, first), first, width, count, low)
