"""A deterministic embedder for tests and demos that must not load a neural model.

Words are hashed into a fixed number of buckets (the "hashing trick"), so texts that share
words get similar vectors: good enough to exercise storage, retrieval and caching, not a
substitute for the real model's semantics.
"""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"\w+")


class HashEmbedder:
    model_id = "hash"

    def __init__(self, dimension: int = 384) -> None:
        self.dimension = dimension

    def embed(self, texts: list[str]):
        import numpy as np

        out = np.zeros((len(texts), self.dimension), dtype="float32")
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dimension
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out
