"""Index health probe, run as a child process by `kb doctor`:

    python -m kb.store.probe CHROMA_DIR COLLECTION

A damaged HNSW file can make Chroma's native code abort or segfault the process that
opens it; here that takes down only the probe. Opens the collection, reads every id and
three vectors, and runs a query with them. Prints one JSON line: {"count", "ids"} on success;
exits non-zero (or dies by a signal) otherwise.
"""

from __future__ import annotations

import json
import sys


def main(path: str, name: str) -> None:
    import shutil
    from pathlib import Path

    from kb.store.local import readonly_snapshot

    snapshot = readonly_snapshot(Path(path))  # a read-only store is probed from a copy
    try:
        _probe(str(snapshot or path), name)
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot.parent, ignore_errors=True)


def _probe(path: str, name: str) -> None:
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path, settings=Settings(anonymized_telemetry=False, allow_reset=False))
    col = client.get_collection(name)
    count = col.count()
    ids: list[str] = []
    page = 5000
    for offset in range(0, count, page):
        ids += col.get(limit=page, offset=offset, include=[])["ids"]
    if count:
        # HNSW is approximate: now and then a fresh, sound index does not return a stored
        # vector among its own nearest (near-duplicate chunks crowd it out), which made a
        # repaired store look damaged. A damaged index misses every one, so three stored
        # vectors are tried and one found among the ten nearest is enough.
        probes = list(dict.fromkeys([ids[0], ids[len(ids) // 2], ids[-1]]))
        got = col.get(ids=probes, include=["embeddings"])
        vectors = got["embeddings"]
        if vectors is None or len(vectors) == 0:
            raise SystemExit(f"the store has no vector for {probes[0]}")
        result = col.query(
            query_embeddings=np.asarray(vectors, dtype=np.float32), n_results=min(10, count), include=["distances"]
        )
        found = any(
            cid in near or (dists and abs(dists[0]) <= 1e-3)
            for cid, near, dists in zip(got["ids"], result["ids"], result["distances"] or [[] for _ in probes])
        )
        if not found:
            raise SystemExit(f"the index does not find a stored vector ({probes[0]})")
    print(json.dumps({"count": count, "ids": ids}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
