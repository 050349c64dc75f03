"""What an instance pays to mirror a shared KB: the first request on a new instance (every
file record and chunk text fetched from Redis and the Chroma server), a request when nothing
changed, and one after another instance changed a single file.

    python benchmarks/mirror_sync.py [--files 400] [--json FILE]

Real redis-server and `chroma run` on 127.0.0.1, two facades with their own KB_HOMEs. The
hash embedder stands in for the model: this measures kb's sync, not the encoder. The
reference in the same run is the same KB's local dense search on the writer (no sync).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.corpus import notes_corpus  # noqa: E402
from benchmarks.cpu import cpu_line  # noqa: E402
from tests.servers import ChromaServer, RedisServer  # noqa: E402


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return round((time.perf_counter() - started) * 1000, 1)


def run(work: Path, files: int) -> dict:
    from kb import KnowledgeBase, SearchOptions
    from kb.config import load_settings

    redis, chroma = RedisServer(work / "redis").start(), ChromaServer(work / "chroma").start()
    os.environ.update(KB_MODEL="hash", KB_STATE_URL=redis.url, KB_STORE_URL=chroma.url)
    try:
        corpus = work / "corpus"
        notes_corpus(corpus, files)
        writer = KnowledgeBase(load_settings(home=str(work / "a")))
        ingest_ms = _timed(lambda: writer.ingest([corpus]))
        docs, chunks, _ = writer.access.manifest.totals()
        query = ["how does the module handle errors"]
        writer.search(query, k=5, options=SearchOptions(mode="dense"))
        search_ms = _timed(lambda: writer.search(query, k=5, options=SearchOptions(mode="dense")))

        reader = KnowledgeBase(load_settings(home=str(work / "b")))
        first_ms = _timed(lambda: reader.search(query, k=5, options=SearchOptions(mode="dense")))
        again_ms = _timed(lambda: reader.search(query, k=5, options=SearchOptions(mode="dense")))
        victim = sorted(corpus.iterdir())[0]
        victim.write_text(victim.read_text() + "\n\nOne more paragraph about error handling.\n")
        writer.ingest([corpus])
        one_file_ms = _timed(lambda: reader.search(query, k=5, options=SearchOptions(mode="dense")))
        for kb in (writer, reader):
            kb.close()
            kb.home.close()
        return {
            "files": docs,
            "chunks": chunks,
            "ingest_ms": ingest_ms,
            "writer_search_ms": search_ms,
            "first_request_ms": first_ms,
            "first_request_chunks_per_s": round(chunks / (first_ms / 1000)),
            "unchanged_request_ms": again_ms,
            "one_file_changed_request_ms": one_file_ms,
        }
    finally:
        redis.stop()
        chroma.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=400, help="note files in the KB")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    print(cpu_line())
    with tempfile.TemporaryDirectory(prefix="kb-mirror-") as tmp:
        result = run(Path(tmp), args.files)
    for name, value in result.items():
        print(f"{name:<30} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
