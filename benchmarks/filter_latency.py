"""What search filters and the reranker stage cost a search, on an existing knowledge base.

    python benchmarks/filter_latency.py QUERIES.jsonl [--kb NAME] [--n 300] [--reranker]

For each mode, the same queries (the first N of a BEIR queries file) are searched with no
filter, then with filters that leave one document and about 1%, 10% and 50% of them (a
`PREFIX*` glob over the file names, the share printed), and with a type filter that leaves
every document (nothing to restrict). Query embeddings are cached by a first pass, so the
figures are the ranking's cost. With --reranker, the reranker stage is timed too, against a
loopback fake reranker (tests/fake_reranker.py; no model): what kb's stage costs on top of a
real reranker's own inference. Prints p50 and p95 milliseconds per search and the CPU line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cpu import cpu_line


def _queries(path: Path, n: int) -> list[str]:
    with path.open() as f:
        return [json.loads(line)["text"] for line in f if line.strip()][:n]


def _prefix_glob(names: list[str], share: float) -> tuple[str, int]:
    """A glob `PREFIX*` over file names whose share of the documents is nearest `share`."""
    counts: dict[str, int] = {}
    for name in names:
        for length in range(1, 4):
            counts[name[:length]] = counts.get(name[:length], 0) + 1
    prefix = min(counts, key=lambda p: abs(counts[p] / len(names) - share))
    return f"{prefix}*", counts[prefix]


def _filters(sources: list[str]) -> dict[str, object]:
    from kb import SearchFilter

    names = [p.rsplit("/", 1)[-1] for p in sources]
    kinds = {n.rsplit(".", 1)[-1] for n in names if "." in n}
    out: dict[str, object] = {"none": SearchFilter(), "one document": SearchFilter.of([sorted(names)[len(names) // 2]])}
    for share in (0.01, 0.1, 0.5):
        glob, count = _prefix_glob(names, share)
        out[f"{glob} ({count} docs)"] = SearchFilter.of([glob])
    out["type: every document"] = SearchFilter.of(types=sorted(kinds))
    return out


def _time(kb, queries: list[str], options) -> tuple[float, float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        kb.search(q, options=options, record=False)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("queries", type=Path)
    parser.add_argument("--kb", default=None)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--reranker", action="store_true", help="also time the stage against a loopback fake")
    args = parser.parse_args()

    import kb as kblib
    from kb import SearchOptions

    print(cpu_line())
    queries = _queries(args.queries, args.n)
    base = kblib.open(args.kb)
    sources = [d.source for d in base.documents()]
    print(f"{len(sources)} documents, {len(queries)} queries")
    base.search_many(queries, SearchOptions(k=10), record=False)  # caches the query embeddings
    filters = _filters(sources)
    for mode in ("hybrid", "dense", "keyword"):
        for name, found in filters.items():
            p50, p95 = _time(base, queries, SearchOptions(k=10, mode=mode, filter=found))  # type: ignore[arg-type]
            print(f"{mode:8} {name:24} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")
    base.close()
    if args.reranker:
        from tests.fake_reranker import FakeReranker

        fake = FakeReranker(favour="the").start()
        os.environ.update(KB_RERANKER_KIND="http", KB_RERANKER_BASE_URL=fake.url)
        try:
            reranked = kblib.open(args.kb)
            for rerank in (False, True):
                p50, p95 = _time(reranked, queries, SearchOptions(k=10, rerank=rerank))
                print(
                    f"hybrid   reranker {'on (30 candidates)' if rerank else 'off':18} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms"
                )
            reranked.close()
        finally:
            fake.stop()


if __name__ == "__main__":
    main()
