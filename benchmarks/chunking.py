"""Chunk size and overlap, quality and speed together: one row per setting, in one run.

    python benchmarks/chunking.py [--sizes 128,200,254] [--overlaps 0,32,64] [--every 6] [--json FILE]

For each (chunk_tokens, chunk_overlap), a fresh KB of sample_corpus/ plus the standard
library's documentation as distractors (every `--every`-th module, long documents) is
ingested with the real model, then measured:
- passage answer recall@5: how often a gold answer of eval/sample/qa.jsonl appears in the
  top 5 passages (hybrid and dense), the text an answerer sees; with the words those five
  passages hold, which is what a bigger chunk costs a language model's context;
- nDCG@10 of eval/sample/queries.jsonl and qrels.tsv (documents, hybrid and dense);
- ingest seconds and chunks, and the word pieces of the chunk texts (the encoder's work).
The first setting is ingested twice and only the second timing kept: the first ingest of a
process pays for loading the model.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import prose_corpus  # noqa: E402
from benchmarks.cpu import cpu_line  # noqa: E402

_PUNCT = set(string.punctuation)


def _normalise(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _measure(home: Path, corpus: Path, size: int, overlap: int) -> dict:
    from kb import KnowledgeBase, SearchOptions
    from kb.config import load_settings
    from kb.evaluation import datasets
    from kb.evaluation.retrieval import evaluate

    kb = KnowledgeBase(load_settings(home=str(home), chunk_tokens=size, chunk_overlap=overlap))
    started = time.perf_counter()
    report = kb.ingest([corpus])
    seconds = time.perf_counter() - started
    assert not report.failed, report.failed
    _, chunks, _ = kb.access.manifest.totals()
    texts = [
        c.text for c in kb.access.manifest.chunks([i for r in kb.access.manifest.all() for i in r.chunk_ids]).values()
    ]
    pieces = sum(kb.home.chunker.count(t) for t in texts)
    qa = datasets.load_qa(ROOT / "eval/sample/qa.jsonl")
    row: dict = {"chunk_tokens": size, "overlap": overlap, "chunks": chunks, "word_pieces": pieces,
                 "ingest_s": round(seconds, 2), "chunks_per_s": round(report.chunks_embedded / seconds, 1)}  # fmt: skip
    for mode in ("hybrid", "dense"):
        found, words = 0, 0
        results = kb.search_many([item.question for item in qa], SearchOptions(k=5, mode=mode), record=False)
        for item, hits in zip(qa, results):
            passages = _normalise(" ".join(h.text for h in hits))
            found += any(_normalise(a) in passages for a in item.answers)
            words += sum(len(h.text.split()) for h in hits)
        row[f"answer_recall@5_{mode}"] = round(found / len(qa), 4)
        row[f"words@5_{mode}"] = round(words / len(qa), 1)
    queries = datasets.load_queries(ROOT / "eval/sample/queries.jsonl")
    qrels = datasets.load_qrels(ROOT / "eval/sample/qrels.tsv")
    retrieval = evaluate(kb, queries, qrels, ["hybrid", "dense"])
    for mode, figures in retrieval.modes.items():
        row[f"ndcg@10_{mode}"] = figures["ndcg@10"]
    kb.close()
    kb.home.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="128,200,254", help="chunk_tokens values, comma-separated")
    parser.add_argument(
        "--overlaps", default="0,16,32,64", help="chunk_overlap values, comma-separated (each under half the size)"
    )
    parser.add_argument("--every", type=int, default=6, help="every N-th standard-library module as a distractor")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    print(cpu_line())
    settings = [
        (int(s), int(o)) for s in args.sizes.split(",") for o in args.overlaps.split(",") if 2 * int(o) < int(s)
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kb-chunking-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        shutil.copytree(ROOT / "sample_corpus", corpus / "sample")
        prose_corpus(corpus / "stdlib", every=args.every)
        _measure(work / "warm", corpus, *settings[0])  # loads the model; not reported
        for n, (size, overlap) in enumerate(settings):
            row = _measure(work / f"kb{n}", corpus, size, overlap)
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = list(rows[0])
    print("\n" + " | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
