"""One size of the search sweep, in its own process so its memory is its own.

    python benchmarks/search_sweep.py N STORE_DIR [QUERIES] [--ef EF[,EF...]] [--vectors DIR] [--reuse]

Fills a kb LocalChromaStore with N synthetic unit vectors (clustered around 256 centres, seed
7), or with the first N rows of DIR/docs.npy (`--vectors`, from real_vectors.py; its
queries.npy are the queries). `--reuse`: STORE_DIR already holds exactly these vectors,
as ids c00000000…; nothing is written. Then, per ef_search (`--ef`, set on the
collection; none: the collection's own), for QUERIES query vectors it times

- LocalChromaStore.query at k=5, the call `kb search` makes (p50_ms, p99_ms);
- the bare index query at k=10 with ids and distances only, as hybrid search asks it
  (index_p50_ms, index_p99_ms), and its recall@10 against exact search (NumPy brute force
  over the same vectors), counted two ways: by ids (recall_at_10), and by distance as
  ann-benchmarks counts it (recall_at_10_dist: a result is a hit if it is no farther than
  the exact 10th neighbour plus 1e-3, so an equally close duplicate is not a miss);
- the first query of a fresh LocalChromaStore, which loads the index (first_query_ms).

Prints one JSON line; its top-level figures are the first ef's, `by_ef` has them all.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

DIM = 384
BATCH = 5000
K = 10


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _peak_rss_mb() -> int:
    # VmHWM, not ru_maxrss: the latter survives execve, so a child of a big benchmark
    # process would report its parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return -1


def _synthetic(n: int, queries: int) -> tuple[Iterator[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((256, DIM)))

    def noisy(r: np.random.Generator, m: int) -> np.ndarray:
        # noise of norm ~2.4 against centres of norm 1: near-uniform on the sphere
        return _unit(centres[r.integers(0, 256, m)] + 0.6 * r.standard_normal((m, DIM)) / np.sqrt(DIM) * 4)

    def batches() -> Iterator[np.ndarray]:
        for i in range(0, n, BATCH):
            yield noisy(rng, min(BATCH, n - i))

    return batches(), noisy(np.random.default_rng(11), queries)


def _real(folder: Path, n: int, queries: int) -> tuple[Iterator[np.ndarray], np.ndarray]:
    docs = np.load(folder / "docs.npy", mmap_mode="r")
    if n > len(docs):
        raise SystemExit(f"{folder / 'docs.npy'} has {len(docs)} vectors, not {n}")
    return (np.asarray(docs[i : min(i + BATCH, n)]) for i in range(0, n, BATCH)), np.load(folder / "queries.npy")[
        :queries
    ]


class _ExactTop:
    """The exact top-K of every query, kept batch by batch so the vectors need not stay
    in memory (they would count in the store's RSS)."""

    def __init__(self, probe: np.ndarray) -> None:
        self._probe = probe
        self.ids = np.zeros((len(probe), 0), dtype=np.int64)
        self._scores = np.zeros((len(probe), 0), dtype=np.float32)

    @property
    def tenth_distance(self) -> np.ndarray:
        """Cosine distance of each query's exact K-th neighbour (Chroma's 1 - similarity)."""
        return 1 - self._scores.min(axis=1)

    def see(self, start: int, vectors: np.ndarray) -> None:
        scores = np.hstack([self._scores, self._probe @ vectors.T])
        ids = np.hstack(
            [self.ids, np.broadcast_to(np.arange(start, start + len(vectors)), (len(self._probe), len(vectors)))]
        )
        keep = np.argpartition(-scores, K - 1, axis=1)[:, :K] if scores.shape[1] > K else np.argsort(-scores, axis=1)
        self._scores = np.take_along_axis(scores, keep, axis=1)
        self.ids = np.take_along_axis(ids, keep, axis=1)


_DIST_EPSILON = 1e-3  # ann-benchmarks' knn_threshold (ann_benchmarks/plotting/metrics.py)


def hits(ids: list[str], distances: list[float], want: np.ndarray, tenth: float) -> tuple[int, int]:
    """(results among the exact top K by id, results no farther than its K-th + epsilon)."""
    by_id = len({int(cid[1:]) for cid in ids} & set(want.tolist()))
    return by_id, sum(d <= tenth + _DIST_EPSILON for d in distances)


def _measure(store_dir: str, probe: np.ndarray, exact: _ExactTop, ef: int | None) -> dict:
    from kb.store.local import LocalChromaStore

    store = LocalChromaStore(Path(store_dir), "sweep")
    col = store._col  # the bare index query: what hybrid search asks for, without the kb layer
    if ef is not None:
        # After the store opens (it may set its own ef) and before the first query, which
        # loads the index with the ef stored then; an index already loaded keeps its ef.
        col.modify(configuration={"hnsw": {"ef_search": ef}})
    ef = (col.configuration.get("hnsw") or {}).get("ef_search")
    t = time.perf_counter()
    store.query(probe[0][None], 5)  # loads the index: what a new `kb search` process pays
    first_ms = (time.perf_counter() - t) * 1000
    for row in probe[1:10]:  # warm the index into memory
        store.query(row[None], 5)
    kb_times, index_times, recall, recall_dist = [], [], [], []
    for row, want, tenth in zip(probe, exact.ids, exact.tenth_distance):
        t = time.perf_counter()
        store.query(row[None], 5)
        kb_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = col.query(query_embeddings=row[None], n_results=K, include=["distances"])
        index_times.append(time.perf_counter() - t)
        by_id, by_distance = hits(res["ids"][0], res["distances"][0], want, float(tenth))
        recall.append(by_id / K)
        recall_dist.append(by_distance / K)
    store.close()
    kb_ms, index_ms = np.array(kb_times) * 1000, np.array(index_times) * 1000
    return {
        "ef_search": ef,
        "p50_ms": round(float(np.percentile(kb_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(kb_ms, 99)), 2),
        "index_p50_ms": round(float(np.percentile(index_ms, 50)), 2),
        "index_p99_ms": round(float(np.percentile(index_ms, 99)), 2),
        "recall_at_10": round(float(np.mean(recall)), 3),
        "recall_at_10_dist": round(float(np.mean(recall_dist)), 3),
        "first_query_ms": round(first_ms, 1),
    }


def main(n: int, store_dir: str, queries: int, efs: list[int], vectors: Path | None, reuse: bool) -> None:
    from kb.documents import Chunk
    from kb.store.local import LocalChromaStore

    batches, probe = _real(vectors, n, queries) if vectors else _synthetic(n, queries)
    exact = _ExactTop(probe)
    store = None if reuse else LocalChromaStore(Path(store_dir), "sweep")
    started = time.perf_counter()
    i = 0
    for batch in batches:
        exact.see(i, batch)
        if store is not None:
            chunks = [
                Chunk(
                    id=f"c{i + j:08d}",
                    source=f"/bench/doc{(i + j) // 8}.md",
                    text=f"chunk {i + j}",
                    ordinal=(i + j) % 8,
                    lines=(1, 9),
                )
                for j in range(len(batch))
            ]
            store.add(chunks, batch)
        i += len(batch)
    insert_s = time.perf_counter() - started
    if store is not None:
        store.close()
    by_ef = []
    for ef in efs or [None]:
        by_ef.append(_measure(store_dir, probe, exact, ef))
    print(
        json.dumps(
            {
                "chunks": n,
                "vectors": "synthetic" if vectors is None else str(vectors),
                "queries": len(probe),
                "insert_s": None if reuse else round(insert_s, 1),
                **by_ef[0],
                "by_ef": by_ef,
                "max_rss_mb": _peak_rss_mb(),
                "disk_mb": round(sum(p.stat().st_size for p in Path(store_dir).rglob("*") if p.is_file()) / 2**20),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("store_dir")
    parser.add_argument("queries", type=int, nargs="?", default=300)
    parser.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[])
    parser.add_argument("--vectors", type=Path)
    parser.add_argument("--reuse", action="store_true")
    a = parser.parse_args()
    main(a.n, a.store_dir, a.queries, a.ef, a.vectors, a.reuse)
