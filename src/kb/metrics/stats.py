"""Figures for `kb stats`: counts, cache hits, latency percentiles, usage, errors, drift.

Drift compares the recent distribution of top-1 retrieval similarity (the best hit's
cosine similarity for each search or question) with the baseline before it. With
`--since`, "recent" is that window and the baseline is everything earlier; without it,
the most recent RECENT_WINDOW queries against all earlier ones. A fall in similarity, or a
growing share of questions below `low_match`, means people ask about things the KB does
not cover.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

from kb.config.settings import RERANKER
from kb.options import duration_s

RECENT_WINDOW = 50
MIN_SAMPLES = 10


def parse_since(text: str | None) -> float | None:
    return time.time() - duration_s(text, "since") if text else None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return round(ordered[rank], 2)


def _latency(values: list[float]) -> dict:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "n": len(values),
    }


def similarity_summary(values: list[float], low: float) -> dict:
    """Top-1 similarities: how many, their mean and median, the share below `low`."""
    if not values:
        return {"n": 0, "mean": None, "p50": None, "low_match_share": None}
    return {
        "n": len(values),
        "mean": round(sum(values) / len(values), 4),
        "p50": percentile(values, 50),
        "low_match_share": round(sum(v < low for v in values) / len(values), 4),
    }


def _ks(a: list[float], b: list[float]) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two CDFs."""
    points = sorted(set(a) | set(b))
    sa, sb = sorted(a), sorted(b)
    gap, i, j = 0.0, 0, 0
    for x in points:
        while i < len(sa) and sa[i] <= x:
            i += 1
        while j < len(sb) and sb[j] <= x:
            j += 1
        gap = max(gap, abs(i / len(sa) - j / len(sb)))
    return round(gap, 4)


def drift(recent: list[float], baseline: list[float], low: float) -> dict:
    out = {
        "recent": similarity_summary(recent, low),
        "baseline": similarity_summary(baseline, low),
        "low_match": low,
        "mean_shift": None,
        "ks": None,
        "drifting": None,
    }
    if recent and baseline:
        shift = round(sum(recent) / len(recent) - sum(baseline) / len(baseline), 4)
        out["mean_shift"] = shift
        if len(recent) >= MIN_SAMPLES and len(baseline) >= MIN_SAMPLES:
            ks = _ks(recent, baseline)
            out["ks"] = ks
            # Similarity falling by 0.05 on average, or the distributions clearly apart.
            out["drifting"] = shift < -0.05 or ks > 0.3
    return out


def reranker(attempts: list[dict], breaker: dict | None) -> dict | None:
    """The reranker stage: how often it reordered the candidates and how often search fell
    back to the fused order (its errors by kind, and the searches its open breaker skipped)."""
    if not attempts and breaker is None:
        return None
    ok = [a for a in attempts if a["outcome"] == "ok"]
    failed: dict[str, int] = defaultdict(int)
    for a in attempts:
        if a["outcome"] != "ok":
            failed[a["error"] or "error"] += 1
    calls = len(attempts)
    return {
        "calls": calls,
        "reranked": len(ok),
        "fell_back": calls - len(ok),
        "fallback_rate": round((calls - len(ok)) / calls, 4) if calls else None,
        "failures": dict(failed),
        "latency_ms": _latency([a["latency_ms"] for a in ok if a["latency_ms"] is not None]),
        "breaker": (breaker or {}).get("state", "closed"),
    }


def compute(
    events: list[dict], attempts: list[dict], breakers: dict, baseline_top1: list[float] | None, low: float
) -> dict:
    by_kind: dict[str, int] = defaultdict(int)
    for e in events:
        by_kind[e["kind"]] += 1
    asks = [e for e in events if e["kind"] == "ask"]
    cached = sum(1 for e in asks if e["cached"])
    stages = {
        stage: {
            kind: _latency([e[f"{stage}_ms"] for e in events if e["kind"] == kind and e[f"{stage}_ms"] is not None])
            for kind in ("ask", "search", "ingest")
            if by_kind.get(kind)
        }
        for stage in ("retrieve", "generate", "total")
    }
    reranking = [a for a in attempts if a["provider"] == RERANKER]  # the reranker's own section
    attempts = [a for a in attempts if a["provider"] != RERANKER]
    rerank_breaker = breakers.get(RERANKER)
    breakers = {name: state for name, state in breakers.items() if name != RERANKER}
    providers: dict[str, dict] = defaultdict(
        lambda: {
            "answers": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "attempts": 0,
            "errors": 0,
            "skipped": 0,
        }
    )
    for e in asks:
        if e["provider"] and not e["cached"]:
            p = providers[e["provider"]]
            p["answers"] += 1
            p["input_tokens"] += e["input_tokens"] or 0
            p["output_tokens"] += e["output_tokens"] or 0
            p["cost_usd"] = round(p["cost_usd"] + (e["cost_usd"] or 0.0), 8)
    for a in attempts:
        p = providers[a["provider"]]
        p["attempts"] += 1
        p["errors"] += a["outcome"] == "error"
        p["skipped"] += a["outcome"] == "skipped"
    for name, p in providers.items():
        tried = p["attempts"] - p["skipped"]
        p["error_rate"] = round(p["errors"] / tried, 4) if tried else None
        p["breaker"] = breakers.get(name, {}).get("state", "closed")
    for name, state in breakers.items():
        if name not in providers:
            providers[name]["breaker"] = state["state"]
    top1 = [e["top1"] for e in events if e["top1"] is not None]
    if baseline_top1 is None:  # no window given: the last RECENT_WINDOW against the rest
        top1, baseline_top1 = top1[-RECENT_WINDOW:], top1[:-RECENT_WINDOW]
    return {
        "requests": dict(by_kind),
        "errors": sum(1 for e in events if e["error"]),
        "cache": {"asks": len(asks), "hits": cached, "hit_rate": round(cached / len(asks), 4) if asks else None},
        "latency_ms": stages,
        "providers": dict(providers),
        "reranker": reranker(reranking, rerank_breaker),
        "drift": drift(top1, baseline_top1, low),
    }
