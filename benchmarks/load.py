"""Load test of `kb serve`: search and cached-ask throughput and latency at 1, 8 and 32
concurrent clients, with micro-batching of query encoding on and off, in one run.

    python benchmarks/load.py [--requests 400] [--json FILE]

A real server (uvicorn, one process) on 127.0.0.1 over a knowledge base of the standard
library's docstrings, embedded with the real model; an httpx asyncio load generator in this
process, bounded in count and time, talking to loopback only. Every search is a query the
server has not seen (no query-embedding cache hits); every cached ask repeats one question
(answer-cache hits after the first). The server and the load generator share this machine's
cores, which bounds every figure here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.corpus import prose_corpus  # noqa: E402
from tests.service.processes import Server  # noqa: E402

CLIENTS = (1, 8, 32)
# Two rounds of each, interleaved: the first server of a run was seen to be 4x slower than
# later ones (cold page cache and index), which a fixed order would charge to one mode.
ROUNDS = (("off", 1), ("on", 1), ("off", 2), ("on", 2))
DEADLINE_S = 120  # per measurement: the run stops by itself


def _words(corpus: Path) -> list[str]:
    words: list[str] = []
    for path in sorted(corpus.iterdir())[:60]:
        words += [w for w in path.read_text(errors="ignore").split() if w.isalpha() and len(w) > 4]
    return words


class Queries:
    """Distinct queries of four corpus words each, never repeated in a run."""

    def __init__(self, words: list[str]) -> None:
        self.words, self.n = words, 0

    def next(self) -> str:
        self.n += 1
        w = self.words
        return " ".join(w[(self.n * k * 7919) % len(w)] for k in (1, 2, 3, 5)) + f" {self.n}"


async def _measure(url: str, clients: int, total: int, make_request) -> dict:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.monotonic() + DEADLINE_S

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while issued < total and time.monotonic() < deadline:
            issued += 1
            method, path, body = make_request()
            started = time.perf_counter()
            res = await http.request(method, path, json=body)
            latencies.append(time.perf_counter() - started)
            errors += res.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    ordered = sorted(latencies)
    pct = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"clients": clients, "requests": len(latencies), "errors": errors, "seconds": round(wall, 2),
            "throughput": round(len(latencies) / wall, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1)}  # fmt: skip


def _searches(queries: Queries):  # type: ignore[no-untyped-def]
    return lambda: ("POST", "/v1/search", {"query": queries.next()})


def _asks(question: str):  # type: ignore[no-untyped-def]
    return lambda: ("POST", "/v1/ask", {"question": question})


def _one_configuration(server: Server, label: str, words: list[str], total: int, results: dict) -> None:
    searches = _searches(Queries(words))
    asyncio.run(_measure(server.url, 8, 300, searches))  # warm-up: model, index, page cache, threads
    for clients in CLIENTS:
        r = results[f"search, {label}, {clients}"] = asyncio.run(_measure(server.url, clients, total, searches))
        _show("search", label, r)
    asks = _asks("How do I read a file line by line?")
    asyncio.run(_measure(server.url, 1, 1, asks))  # fills the answer cache
    for clients in CLIENTS:
        r = results[f"cached ask, {label}, {clients}"] = asyncio.run(_measure(server.url, clients, total, asks))
        _show("cached ask", label, r)


def _show(kind: str, label: str, r: dict) -> None:
    print(f"{kind:10} {label:22} {r['clients']:>2} clients: {r['throughput']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
          f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}", flush=True)  # fmt: skip


def run(work: Path, total: int) -> dict:
    corpus, home = work / "corpus", work / "home"
    prose_corpus(corpus, every=2)
    subprocess.run([sys.executable, "-m", "kb", "ingest", str(corpus)], env={**os.environ, "KB_HOME": str(home)},
                   check=True, capture_output=True)  # fmt: skip
    words = _words(corpus)
    results: dict = {}
    for mode, round_ in ROUNDS:
        label = f"batching {mode}, round {round_}"
        server = Server(home, {"KB_SERVE_MICRO_BATCH": "true" if mode == "on" else "false"}).wait_ready(120)
        try:
            _one_configuration(server, label, words, total, results)
        finally:
            server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kb-load-"))
    try:
        results = run(work, args.requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    on1, on32 = results["search, batching on, round 2, 1"], results["search, batching on, round 2, 32"]
    ratio = on32["throughput"] / on1["throughput"]
    met = ratio >= 3 and on32["p99_ms"] < 100
    print(f"goal: 32 clients get >= 3x the search throughput of 1 client with p99 < 100 ms: "
          f"{ratio:.2f}x, p99 {on32['p99_ms']} ms -> {'met' if met else 'NOT met'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
