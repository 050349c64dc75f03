"""Which embedder made a knowledge base's vectors, and the guard that keeps others out.

The manifest records the embedder's id (`model`: the packaged model's name, `local:/folder`,
`hash`, or `openai:<model name>` for a service) and, from the first vectors it stores, their
`dimension`. Vectors of two embedders are not comparable even when their dimensions agree,
so a KB refuses a configured embedder whose id or dimension differs from what it records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def describe(model_id: str, dimension: int | None = None) -> str:
    """`model_id` in words: its kind, its model and (when known) its dimension."""
    kind, _, model = model_id.partition(":") if model_id.startswith("openai:") else ("local", "", model_id)
    shown = model.removeprefix("local:")
    size = f", {dimension} dimensions" if dimension else ""
    return f"{shown} ({kind}{size})"


class DimensionChecked:
    """An embedder whose every answer passes `check(dimension)` before anyone uses it: a
    service that starts answering another dimension is refused, not stored or searched."""

    def __init__(self, inner: Any, check: Callable[[int], None]) -> None:
        self.inner = inner
        self.model_id: str = inner.model_id
        self._check = check

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.inner.embed(texts)
        if len(vectors):
            self._check(int(vectors.shape[1]))
        return vectors
