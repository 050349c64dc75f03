"""Reciprocal rank fusion of ranked candidate lists (Cormack, Clarke & Büttcher, 2009).

Each list contributes 1 / (k + rank) to a candidate's score; k = 60 damps the difference
between the first few ranks, so agreement between the lists outweighs one list's top spot.
"""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60


def rrf(lists: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """(id, fused score) best first; ties keep the order of first appearance."""
    scores: dict[str, float] = {}
    for ranked in lists:
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
