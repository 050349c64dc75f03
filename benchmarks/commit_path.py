"""The commit path alone: how many chunks a second the vector store, the manifest and the
keyword index accept, with the embeddings already made. This is the part of an ingest that
must hold the knowledge base's write lock, so it bounds what any number of workers
embedding in parallel could reach (issue 21; the fan-out design in docs/deploy.md).

    python benchmarks/commit_path.py [--every 1] [--copies 8] [--batch 1024] [--store-url URL --state-url URL]

Reading and chunking the prose corpus (benchmarks/corpus.py) are timed too, per chunk, as
they would run on the workers; vectors are random unit vectors made before the clock
starts. Commits go a batch at a time as the pipeline's `_flush` does: the store's add, one
manifest write per file (chunk texts into the keyword index with it), the content version.
Local Chroma and SQLite under a temporary KB_HOME by default; a Chroma server and Redis
with --store-url and --state-url.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import prose_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--copies", type=int, default=8, help="copies of the corpus, each in its own folder")
    parser.add_argument("--store-url")
    parser.add_argument("--state-url")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from kb import KnowledgeBase
    from kb.config import load_settings
    from kb.ingest import readers
    from kb.ingest.discovery import discover
    from kb.ingest.manifest import FileRecord
    from kb.options import IngestScope

    root = Path(tempfile.mkdtemp(prefix="kb-commit-bench-"))
    corpus = root / "corpus"
    prose_corpus(corpus / "0", every=args.every)
    for copy in range(1, args.copies):  # the same texts at other paths: other chunk ids, as new files
        shutil.copytree(corpus / "0", corpus / str(copy))
    overrides = {"home": str(root / "home"), "kb": f"commit{os.getpid()}"}
    if args.store_url:
        os.environ["KB_STORE_URL"], os.environ["KB_STATE_URL"] = args.store_url, args.state_url or ""
    kb = KnowledgeBase(load_settings(**overrides))
    chunker = kb.home.chunker

    started = time.perf_counter()
    files = []
    for path in discover(IngestScope.of([corpus])).files:
        data = path.read_bytes()
        chunks = chunker.chunk(readers.read(path, data))
        files.append((path, path.stat(), chunks))
    read_s = time.perf_counter() - started
    total = sum(len(c) for _, _, c in files)

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((total, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    access = kb.access
    batches: list[list[tuple]] = [[]]
    for item in files:
        batches[-1].append(item)
        if sum(len(c) for _, _, c in batches[-1]) >= args.batch:
            batches.append([])
    offset = 0
    commit_s = 0.0
    with access.writing():
        access.manifest.set_meta("model", kb.home.model_id)
        for batch in batches:
            chunks = [c for _, _, cs in batch for c in cs]
            if not chunks:
                continue
            t0 = time.perf_counter()
            access.store.add(chunks, vectors[offset : offset + len(chunks)])
            for path, st, cs in batch:
                record = FileRecord(str(path), st.st_size, st.st_mtime_ns, "x", chunker.version, kb.home.model_id,
                                    [c.id for c in cs], [], time.time())  # fmt: skip
                access.manifest.put(record, cs)
            access.manifest.bump_version()
            commit_s += time.perf_counter() - t0
            offset += len(chunks)

    result = {
        "files": len(files),
        "chunks": total,
        "batch": args.batch,
        "backend": "Chroma server + Redis" if args.store_url else "local Chroma + SQLite",
        "read_and_chunk_chunks_per_s": round(total / read_s, 1),
        "commit_chunks_per_s": round(total / commit_s, 1),
        "commit_ms_per_batch": round(1000 * commit_s / max(1, len([b for b in batches if b])), 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
