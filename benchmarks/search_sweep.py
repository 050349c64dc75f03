"""One size of the search sweep, in its own process so its memory is its own.

    python benchmarks/search_sweep.py N STORE_DIR [QUERIES]

Fills a kb ChromaStore with N synthetic unit vectors (clustered, like real embeddings,
rather than uniform noise), then times ChromaStore.query — the call `kb search` makes —
for QUERIES fresh query vectors at k=5. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

DIM = 384


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _peak_rss_mb() -> int:
    # VmHWM, not ru_maxrss: the latter survives execve, so a child of a big benchmark
    # process would report its parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return -1


def main(n: int, store_dir: str, queries: int = 300) -> None:
    from kb.documents import Chunk
    from kb.store.chroma import ChromaStore

    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((256, DIM)))
    store = ChromaStore(Path(store_dir), "sweep")
    started = time.perf_counter()
    batch = 5000
    for i in range(0, n, batch):
        m = min(batch, n - i)
        vectors = _unit(centres[rng.integers(0, 256, m)] + 0.6 * rng.standard_normal((m, DIM)) / np.sqrt(DIM) * 4)
        chunks = [
            Chunk(
                id=f"c{i + j:08d}",
                source=f"/bench/doc{(i + j) // 8}.md",
                text=f"chunk {i + j}",
                ordinal=(i + j) % 8,
                lines=(1, 9),
            )
            for j in range(m)
        ]
        store.add(chunks, vectors)
    insert_s = time.perf_counter() - started
    probe = _unit(centres[rng.integers(0, 256, queries)] + 0.6 * rng.standard_normal((queries, DIM)) / np.sqrt(DIM) * 4)
    for row in probe[:10]:  # warm the index into memory
        store.query(row[None], 5)
    times = []
    for row in probe:
        t = time.perf_counter()
        store.query(row[None], 5)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    print(
        json.dumps(
            {
                "chunks": n,
                "insert_s": round(insert_s, 1),
                "p50_ms": round(float(np.percentile(ms, 50)), 2),
                "p99_ms": round(float(np.percentile(ms, 99)), 2),
                "max_rss_mb": _peak_rss_mb(),
                "disk_mb": round(sum(p.stat().st_size for p in Path(store_dir).rglob("*") if p.is_file()) / 2**20),
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], *(int(a) for a in sys.argv[3:4]))
