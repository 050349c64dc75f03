"""How well the extractive answerer answers: SQuAD-style containment and token F1.

    python benchmarks/extractive_qa.py [--data benchmarks/data/extractive_qa.jsonl] [--json FILE]

Every distinct context of the set is written as its own file into a temporary KB (real
model: KB_MODEL as set, by default the packaged all-MiniLM-L6-v2), so each question is
asked with its gold paragraph in the KB among all the others. Each question goes to the
extractive provider only, without the answer cache. The citation markers are removed
before scoring; answers are normalised the SQuAD way (lower-case, punctuation and
articles removed, whitespace collapsed).

Items with no gold answers are questions the KB does not answer: for those the figure is
how often the answerer says so ("refused"). Figures are given per `split` of the data:
`tuning` (the questions the answerer's weights were chosen on), `heldout` (written after
that, never tuned on) and `unanswerable`. Runs with any kb source tree on PYTHONPATH, so the same
script measures an older answerer (`PYTHONPATH=/path/to/other/src`).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_CITATION = re.compile(r"\s*(?<![\w\[])\[\d{1,2}\](?![(\w])")  # as kb.answering.citations reads them
_PUNCT = set(string.punctuation)
# The extractive answerer's "not in the documents" phrasings, old and new.
_REFUSAL = re.compile(r"documents do not (clearly )?(cover|answer)", re.IGNORECASE)


def normalise(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    p, g = normalise(prediction).split(), normalise(gold).split()
    common = sum((collections.Counter(p) & collections.Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def _summary(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["contains"] is not None]
    out: dict[str, object] = {"questions": len(rows), "refused": sum(r["refused"] for r in rows)}
    if answerable:
        out |= {
            "containment": round(sum(r["contains"] for r in answerable) / len(answerable), 3),
            "f1": round(statistics.mean(r["f1"] for r in answerable), 3),
            "gold_cited": round(sum(r["gold_cited"] for r in answerable) / len(answerable), 3),
            "mean_words": round(statistics.mean(r["words"] for r in answerable), 1),
            "max_words": max(r["words"] for r in answerable),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE / "data" / "extractive_qa.jsonl")
    parser.add_argument("--json", type=Path, help="also write per-question results here")
    args = parser.parse_args()
    items = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KB_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("OPENAI_API_KEY", None)
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for item in items:
            if item["context"]:
                (docs / f"{item['context_id']}.txt").write_text(item["context"] + "\n", encoding="utf-8")

        from kb import KnowledgeBase
        from kb.config import load_settings

        kb = KnowledgeBase(load_settings())
        kb.ingest([docs])
        kb.ask("warm-up question", provider="extractive", use_cache=False)
        rows = []
        for item in items:
            started = time.perf_counter()
            ans = kb.ask(item["question"], provider="extractive", use_cache=False)
            ms = (time.perf_counter() - started) * 1000
            text = _CITATION.sub("", ans.answer).strip()
            gold = item["answers"]
            cited = {Path(c.hit.source).stem for c in ans.citations}
            rows.append(
                {
                    "id": item["id"],
                    "question": item["question"],
                    "answer": ans.answer,
                    "words": len(text.split()),
                    "refused": bool(_REFUSAL.search(text)),
                    "contains": any(normalise(g) in normalise(text) for g in gold) if gold else None,
                    "f1": max(f1(text, g) for g in gold) if gold else None,
                    "gold_cited": item["context_id"] in cited if gold else None,
                    "ms": ms,
                }
            )
        kb.close()

    report: dict[str, object] = {}
    for split in sorted({item["split"] for item in items}):
        chosen = [r for r, item in zip(rows, items) if item["split"] == split]
        report[split] = _summary(chosen)
    report["ms_p50"] = statistics.median(r["ms"] for r in rows)
    for r in rows:
        mark = {True: "ok ", False: "MISS", None: "n/a "}[r["contains"]]
        print(f"{mark} {r['id']} {r['question']}\n       -> {r['answer']}")
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"report": report, "rows": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
