"""What a search looks for: one text, or several weighted texts (a conversation's user turns,
when no language model condenses them into one question).

A single text is embedded and its words go to the keyword side, as they always have. With
weighted parts the dense side searches with the weighted mean of the parts' embeddings (each
normalised first, so a long turn does not outweigh a short one; the mean normalised again),
and the keyword side with the words of every part, the heaviest part's first (the keyword
side keeps at most 32 words). `text` is what the reranker reads and what an answer shows as
the question that was searched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from kb.embedding import Embedder


@dataclass(frozen=True)
class Query:
    text: str
    parts: tuple[tuple[str, float], ...] = ()  # (text, weight); empty: `text` alone

    @property
    def keyword_text(self) -> str:
        if not self.parts:
            return self.text
        return " ".join(text for text, _ in sorted(self.parts, key=lambda part: -part[1]))

    def vector(self, embedder: Embedder) -> np.ndarray:
        import numpy as np  # not at import: `kb --help` and cached answers need no NumPy

        if not self.parts:
            return np.asarray(embedder.embed([self.text])[0], dtype=np.float32)
        vectors = np.asarray(embedder.embed([text for text, _ in self.parts]), dtype=np.float32)
        weights = np.asarray([weight for _, weight in self.parts], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        mixed = (weights[:, None] * vectors / np.where(norms > 0, norms, 1)).sum(axis=0)
        length = float(np.linalg.norm(mixed))
        return mixed / length if length > 0 else mixed


def as_query(query: Query | str) -> Query:
    return query if isinstance(query, Query) else Query(query)
