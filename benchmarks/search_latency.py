"""Warm search latency at N chunks: hybrid (dense + FTS5 keyword, fused) against dense only.

    python benchmarks/search_latency.py [N] [--queries Q] [--dir DIR [--reuse]]

Builds a knowledge base of N chunks without a neural model: chunk texts are 150-word windows
of real English prose (the standard library's docstrings, benchmarks/corpus.py), committed
through SqliteManifest.put (which writes the keyword index) and LocalChromaStore.add with synthetic
clustered unit vectors (as search_sweep.py) in place of embeddings. Queries are embedded by
the hash embedder (KB_MODEL=hash, microseconds), so the figures are the retrieval itself:
Chroma, FTS5, fusion and reading the kept texts. Two query sets: `phrase`, 3-8 consecutive
words of the prose (mostly common words: in a corpus this repetitive, many leave hybrid's
keyword side empty), and `rare`, 2-5 words of context plus one word that occurs at most
three times in the source prose (a name, a code: what the keyword side is for).

Times KnowledgeBase.search — the call `kb search` makes — for Q new queries per mode, the
modes alternating query by query so both meet the same machine load. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DIM = 384
PER_DOC = 8


def _words() -> list[str]:
    from corpus import _module_texts

    words: list[str] = []
    for _, sections in _module_texts():
        for _, text in sections:
            words += text.split()
    return words


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def build(home: Path, n: int, words: list[str]) -> float:
    from kb.config import load_settings
    from kb.documents import Chunk
    from kb.ingest.manifest import FileRecord, SqliteManifest
    from kb.store.local import LocalChromaStore

    settings = load_settings(home=str(home), model="hash")
    started = time.perf_counter()
    manifest = SqliteManifest(settings.kb_dir / "manifest.db")
    manifest.set_meta("model", "hash")
    store = LocalChromaStore(settings.kb_dir / "chroma", settings.kb)
    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((256, DIM)))
    batch = 4000
    for first in range(0, n, batch):
        m = min(batch, n - first)
        chunks = []
        for i in range(first, first + m):
            start = (i * 7919) % (len(words) - 150)
            chunks.append(Chunk(f"c{i:08d}", f"/bench/doc{i // PER_DOC}.md", " ".join(words[start : start + 150]),
                                i % PER_DOC, heading=f"Section {i % 50}", lines=(1, 9)))  # fmt: skip
        noise = 0.6 * rng.standard_normal((m, DIM)) / np.sqrt(DIM) * 4
        store.add(chunks, _unit(centres[rng.integers(0, 256, m)] + noise))
        for d in range(0, m, PER_DOC):
            part = chunks[d : d + PER_DOC]
            record = FileRecord(part[0].source, 1, 1, "-", "bench", "hash", [c.id for c in part], [], time.time())
            manifest.put(record, part)
    manifest.bump_version()
    manifest.close()
    store.close()
    return time.perf_counter() - started


def measure(home: Path, queries: int, words: list[str], kind: str) -> dict:
    from collections import Counter

    from kb import KnowledgeBase, SearchOptions
    from kb.config import load_settings
    from kb.retrieval.keyword import terms

    os.environ["KB_HOME"] = str(home)
    kb = KnowledgeBase(load_settings(home=str(home), model="hash"))
    rnd = random.Random(11 if kind == "phrase" else 13)
    counts = Counter(w.lower() for w in words)
    rare = sorted(w for w, c in counts.items() if c <= 3 and w.isalpha() and len(w) >= 5)

    def query() -> str:
        start = rnd.randrange(len(words) - 10)
        if kind == "phrase":
            return " ".join(words[start : start + rnd.randint(3, 8)])
        return " ".join([*words[start : start + rnd.randint(2, 5)], rnd.choice(rare)])

    modes = ("dense", "hybrid", "keyword")
    for mode in modes:  # warm: the index into memory, the connections open
        for _ in range(10):
            kb.search(query(), 5, options=SearchOptions(mode=mode))
    times: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(queries):
        order = modes if i % 2 else modes[::-1]
        for mode in order:
            q = query()  # new for every call: the query-embedding cache never answers
            t = time.perf_counter()
            kb.search(q, 5, options=SearchOptions(mode=mode))
            times[mode].append((time.perf_counter() - t) * 1000)
    sample = [query() for _ in range(200)]
    rare, version = kb.access.rare_terms, kb.access.manifest.content_key()
    ranked = [rare.choose(terms(q), version) for q in sample]  # the words FTS5 ranks with
    rescored = [rare.choose(terms(q), version, rare.rescore_budget) for q in sample]  # and rescores with
    kb.close()
    out: dict = {
        "queries_with_a_keyword_side": round(sum(map(bool, ranked)) / len(sample), 2),
        "queries_rescored": round(sum(a != b for a, b in zip(ranked, rescored)) / len(sample), 2),
    }
    for mode, ms in times.items():
        a = np.array(ms)
        out[mode] = {"p50_ms": round(float(np.percentile(a, 50)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2)}
    for pct in ("p50_ms", "p95_ms"):
        out[f"hybrid_minus_dense_{pct}"] = round(out["hybrid"][pct] - out["dense"][pct], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dir", help="where to build (default: a temporary folder, removed after)")
    parser.add_argument("--reuse", action="store_true", help="measure the KB already built in --dir")
    args = parser.parse_args()
    words = _words()
    with tempfile.TemporaryDirectory(prefix="kb-latency-") as tmp:
        home = Path(args.dir or tmp)
        build_s = 0.0 if args.reuse else build(home, args.n, words)
        result = {"chunks": args.n, "build_s": round(build_s, 1), "queries_per_mode": args.queries}
        for kind in ("phrase", "rare"):
            result[kind] = measure(home, args.queries, words, kind)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
