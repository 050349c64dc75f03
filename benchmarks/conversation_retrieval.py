"""How a follow-up question is best searched without a language model: the last turn alone,
the turns' text joined, or the turns' embeddings mixed by weight (kb.answering.conversation).

    python benchmarks/conversation_retrieval.py eval/sample/conversations.jsonl [--kb NAME]

Each line of the file is a conversation of user turns, the document (corpus id: file name
without extension) that answers its last turn, and its kind: `follow-up` (the last turn
needs the ones before it) or `new topic` (it stands alone, and the earlier turns can only
mislead). Every way is searched in hybrid mode through the same ranking as `kb ask`, and
scored by the rank of the gold document's first passage: hit@1 and MRR@5 per kind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cpu import cpu_line


def _ways(turns: list[str]):
    from kb.answering.conversation import EARLIER_WEIGHTS, Turn, weighted
    from kb.retrieval.query import Query

    *earlier, last = turns
    history = tuple(Turn("user", t) for t in earlier)

    def mixed(weights: tuple[float, ...]) -> Query:
        recent = earlier[-len(weights) :]
        parts = [(text, weights[len(recent) - 1 - i]) for i, text in enumerate(recent)]
        return Query(" ".join(turns), (*parts, (last, 1.0)))

    return {
        "last turn alone": Query(last),
        "turns joined (one text)": Query(" ".join(turns)),
        "weights 1, 1 (equal mix)": mixed((1.0,)),
        "weights 1, 0.5": mixed((0.5,)),
        f"weights 1, {EARLIER_WEIGHTS[0]} (kb)": weighted(history, last),
        "weights 1, 0.125": mixed((0.125,)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("conversations", type=Path)
    parser.add_argument("--kb", default=None)
    args = parser.parse_args()

    import kb as kblib
    from kb.options import SearchOptions

    rows = [json.loads(line) for line in args.conversations.read_text().splitlines() if line.strip()]
    base = kblib.open(args.kb)
    search = base._resolve(SearchOptions(k=5, mode="hybrid"))
    scores: dict[tuple[str, str], list[int | None]] = {}
    with base.access.reading():
        for row in rows:
            for way, query in _ways(row["turns"]).items():
                hits = base._retrieve(query, search, None).hits
                docs = [Path(h.source).stem for h in hits]
                rank = docs.index(row["doc"]) + 1 if row["doc"] in docs else None
                scores.setdefault((row["kind"], way), []).append(rank)
    print(cpu_line())
    print("| kind | way | hit@1 | MRR@5 |\n|---|---|---|---|")
    for (kind, way), ranks in scores.items():
        hit1 = sum(r == 1 for r in ranks)
        mrr = sum(1 / r for r in ranks if r) / len(ranks)
        print(f"| {kind} ({len(ranks)}) | {way} | {hit1}/{len(ranks)} | {mrr:.3f} |")
    base.close()


if __name__ == "__main__":
    main()
