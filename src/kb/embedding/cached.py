"""Query embeddings from the disk cache: a repeated query skips the model."""

from __future__ import annotations

import hashlib


class CachedEmbedder:
    def __init__(self, inner, cache) -> None:
        self.inner = inner
        self.cache = cache
        self.model_id = inner.model_id
        # The text the model sees starts with the query prefix (Prefixed, OpenAIEmbedder):
        # a vector cached under another prefix is another vector.
        self.prefix: str = getattr(inner, "prefix", "")

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def _key(self, text: str) -> str:
        return "qemb:" + hashlib.sha256(f"{self.model_id}\x1f{self.prefix}{text}".encode()).hexdigest()

    def embed(self, texts: list[str]):
        import numpy as np

        rows: list = [self.cache.get(self._key(t)) for t in texts]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing])
            for i, vector in zip(missing, fresh):
                rows[i] = vector
                self.cache.set(self._key(texts[i]), vector)
        return np.vstack(rows).astype("float32", copy=False)
