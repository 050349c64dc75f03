"""Index health probe, run as a child process by `kb doctor`:

    python -m kb.store.probe CHROMA_DIR COLLECTION

A damaged HNSW file can make Chroma's native code abort or segfault the process that
opens it; here that takes down only the probe. Opens the collection, reads every id and
one vector, and runs a query with it. Prints one JSON line: {"count", "ids"} on success;
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
        stored = col.get(ids=[ids[0]], include=["embeddings"])["embeddings"]
        if stored is None or len(stored) == 0:
            raise SystemExit(f"the store has no vector for {ids[0]}")
        first = stored[0]
        result = col.query(
            query_embeddings=np.asarray([first], dtype=np.float32), n_results=min(3, count), include=["distances"]
        )
        nearest = (result["distances"] or [[1.0]])[0][0]
        if result["ids"][0][:1] != [ids[0]] and abs(nearest) > 1e-3:
            raise SystemExit(f"the index does not find a stored vector ({ids[0]})")
    print(json.dumps({"count": count, "ids": ids}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
