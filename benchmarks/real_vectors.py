"""Real embeddings for the search sweep: the docstrings of every installed Python module
(standard library and site-packages, read with `ast`, nothing imported), chunked and
embedded with kb's own encoders. (benchmarks/corpus.py's prose corpus, the standard
library's public docstrings only, is about 1,300 chunks: too few to tell an index from
exact search.)

    python benchmarks/real_vectors.py OUT_DIR [MAX_CHUNKS] [--code] [--chunk-tokens N]

Writes OUT_DIR/docs.npy (chunk vectors, kb's ingest encoder) and OUT_DIR/queries.npy
(queries, kb's query encoder). Every 20th chunk is held out of the documents and its first
sentence becomes a query, so no query is a stored chunk. `search_sweep.py --vectors
OUT_DIR` then measures the index on them: synthetic vectors are near-uniform in 384
dimensions, the hardest case for HNSW and unlike what kb stores.

A million chunks needs more text than the docstrings hold, and embedding a million
200-piece chunks takes hours here: `--code` adds the installed Python source files
themselves (as a code repository in a KB would be ingested), `--chunk-tokens` makes kb's
chunker cut shorter chunks (overlap: an eighth of it) so that the embedding takes minutes.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

HELD_OUT_EVERY = 20
_SLICE = 20_000  # chunks per encoder call: progress, and memory bounded by the slice
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f]")  # kb rightly refuses such text as binary


def _first_sentence(text: str) -> str:
    body = text.split("\n", 1)[-1] if text.startswith("#") else text  # skip a heading line
    return body.split(". ")[0][:300]


def docstring_corpus(folder: Path) -> int:
    """One Markdown file per module with a docstring of 200+ characters; each distinct
    docstring once (re-exports and vendored copies repeat many). Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    roots = {Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])}
    written = 0
    for root in sorted(roots):
        for path in sorted(root.rglob("*.py")):
            try:
                tree = ast.parse(path.read_bytes())
            except (SyntaxError, ValueError, OSError):
                continue
            sections = []
            for node in [tree, *ast.walk(tree)]:
                if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 200 and doc not in seen and not _CONTROL.search(doc):
                    seen.add(doc)
                    sections.append((getattr(node, "name", path.stem), doc))
            if sections:
                text = "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
                (folder / f"{written:06d}_{path.stem}.md").write_text(text, encoding="utf-8")
                written += 1
    return written


def _source_files() -> list[Path]:
    roots = {Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])}
    return [path for root in sorted(roots) for path in sorted(root.rglob("*.py"))]


def main(out: Path, max_chunks: int | None = None, code: bool = False, chunk_tokens: int | None = None) -> None:
    from kb import KnowledgeBase
    from kb.config import load_settings
    from kb.embedding import open_embedder
    from kb.errors import IngestError
    from kb.ingest import readers

    out.mkdir(parents=True, exist_ok=True)
    if not (out / "docstrings").exists():
        docstring_corpus(out / "docstrings")
    overrides = {"chunk_tokens": chunk_tokens, "chunk_overlap": chunk_tokens // 8} if chunk_tokens else {}
    settings = load_settings(home=str(out / "home"), **overrides)
    chunker = KnowledgeBase(settings).home.chunker
    # (file, the name kb's reader sees): source files are read as the plain text they are
    files = [(p, p) for p in sorted((out / "docstrings").iterdir())]
    files += [(p, p.with_suffix(".txt")) for p in _source_files()] if code else []
    random.Random(7).shuffle(files)  # a sample across all packages, not the first few
    texts: list[str] = []
    for path, name in files:
        if max_chunks is not None and len(texts) >= max_chunks:
            break
        try:
            doc = readers.read(name, path.read_bytes())
        except (IngestError, OSError):  # what kb's decoder takes for binary: kb would skip it too
            continue
        texts += [c.embedding_text() for c in chunker.chunk(doc)]
    texts = texts[:max_chunks]
    held = set(range(0, len(texts), HELD_OUT_EVERY))
    docs = [t for i, t in enumerate(texts) if i not in held]
    queries = [_first_sentence(texts[i]) for i in sorted(held)]
    started = time.perf_counter()
    encoder = open_embedder(settings)
    parts = []
    for i in range(0, len(docs), _SLICE):
        parts.append(np.asarray(encoder.embed(docs[i : i + _SLICE]), dtype=np.float32))
        done = i + len(parts[-1])
        print(f"{done}/{len(docs)} chunks, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    doc_vectors = np.concatenate(parts) if parts else np.zeros((0, encoder.dimension), np.float32)
    embed_s = time.perf_counter() - started
    query_vectors = open_embedder(settings, for_queries=True).embed(queries)
    np.save(out / "docs.npy", doc_vectors)
    np.save(out / "queries.npy", np.asarray(query_vectors, dtype=np.float32))
    print(json.dumps({"docs": len(docs), "queries": len(queries), "embed_s": round(embed_s, 1)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("max_chunks", type=int, nargs="?")
    parser.add_argument("--code", action="store_true", help="also the installed Python source files")
    parser.add_argument("--chunk-tokens", type=int, help="kb's chunk_tokens for these chunks (default: kb's)")
    a = parser.parse_args()
    main(a.out, a.max_chunks, a.code, a.chunk_tokens)
