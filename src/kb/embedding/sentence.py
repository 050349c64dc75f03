"""all-MiniLM-L6-v2 (or another local model) through sentence-transformers, for ingest.

Ingest is bound by the encoder, so it runs in the fastest numeric mode the CPU has:
bfloat16 where oneDNN supports it (AVX512-BF16 / AMX: about 1.7x fp32 here, cosine
≥ 0.9999 against fp32 on sample chunks; tests/embedding checks ≥ 0.99), fp32 elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from kb.errors import ConfigError

_BATCH = 32
_LOADED: dict[tuple[str, str], object] = {}  # one model per process and dtype


def resolve_dtype(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


class SentenceTransformerEmbedder:
    def __init__(self, path: Path, model_id: str, dtype: str = "auto") -> None:
        self.model_id = model_id
        self._path = path
        self._requested = dtype
        self.dtype: str | None = None  # resolved on load: importing torch to ask costs seconds
        self._model = None
        self.dimension = 0

    def _load(self):
        if self._model is None:
            # No hub: weights come from the local folder, and progress bars would only
            # scribble over kb's own progress display.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer

            self.dtype = resolve_dtype(self._requested)
            key = (str(self._path), self.dtype)
            if key not in _LOADED:
                try:
                    model = SentenceTransformer(key[0], device="cpu")
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"cannot load the embedding model from {key[0]} ({exc}); check KB_MODEL") from exc
                _LOADED[key] = model.bfloat16() if self.dtype == "bfloat16" else model
            self._model = _LOADED[key]
            self.dimension = self._model.get_embedding_dimension()
        return self._model

    def embed(self, texts: list[str]):
        import numpy as np

        vectors = self._load().encode(
            texts, batch_size=_BATCH, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32, copy=False)
        # Normalised here, in fp32: a bfloat16 norm is off by up to ~0.4%.
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
