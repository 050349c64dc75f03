"""Fusing the dense and keyword candidate lists of a hybrid search by their scores.

Each list's scores are min-max normalised over the candidates it returned (its best is 1,
its last 0) and the two are mixed with equal weight; a candidate missing from one list
gets that list's floor, 0. A convex combination of normalised scores keeps what reciprocal
rank fusion throws away, how far apart the candidates are: a passage that bm25 puts far
ahead of the rest gains over one that is merely first among near-equal cosines. Bruch,
Gai & Ingber ("An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023) found a
convex combination ahead of RRF in and out of domain, its weight tuned on a few queries;
here it is an even split, untuned, on the plateau (0.4 to 0.6) SciFact's train claims
show (docs/quality.md, "Hybrid search on SciFact").
"""

from __future__ import annotations

from collections.abc import Sequence

DENSE_WEIGHT = 0.5  # the keyword list gets the rest


def normalised(scored: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Each candidate's score mapped onto [0, 1] over the list (higher is better). A list
    whose scores are all equal, a single candidate included, scores 1 throughout: each is
    the best that list found."""
    if not scored:
        return {}
    values = [score for _, score in scored]
    high, low = max(values), min(values)
    if high <= low:
        return {item: 1.0 for item, _ in scored}
    return {item: (score - low) / (high - low) for item, score in scored}


def convex(
    dense: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]], weight: float = DENSE_WEIGHT
) -> list[tuple[str, float]]:
    """(id, fused score in [0, 1]) best first, from (id, score) lists whose scores are
    higher-is-better. Ties keep the order of first appearance, dense list first."""
    nd, nk = normalised(dense), normalised(keyword)
    fused = {item: weight * nd.get(item, 0.0) + (1 - weight) * nk.get(item, 0.0) for item in {**nd, **nk}}
    return sorted(fused.items(), key=lambda pair: -pair[1])
