"""Local models that are not BERT with mean pooling, through sentence-transformers (the
packaged model runs on kb's own encoders, bert.py). Also the reference those encoders are
tested against. Same numeric-mode choice as torch_bert.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kb.embedding.torch_bert import resolve_dtype, use_threads
from kb.errors import ConfigError

_BATCH = 32
_LOADED: dict[tuple[str, str], object] = {}  # one model per process and dtype


class SentenceTransformerEmbedder:
    def __init__(self, path: Path, model_id: str, dtype: str = "auto", threads: int | None = None) -> None:
        self.model_id = model_id
        self.threads = threads
        self._path = path
        self._requested = dtype
        self.dtype: str | None = None  # resolved on load: importing torch to ask costs seconds
        self._model: Any = None
        self.dimension = 0

    def _load(self):
        if self._model is None:
            # No hub (local_files_only), and no progress bars scribbling over kb's own
            # display. Through the libraries' APIs: kb never changes os.environ once running.
            from huggingface_hub.utils import disable_progress_bars
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            disable_progress_bars()
            transformers_logging.set_verbosity_error()

            use_threads(self.threads)
            self.dtype = resolve_dtype(self._requested)
            key = (str(self._path), self.dtype)
            if key not in _LOADED:
                try:
                    model = SentenceTransformer(key[0], device="cpu", local_files_only=True)
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"cannot load the embedding model from {key[0]} ({exc}); check KB_MODEL") from exc
                _LOADED[key] = model.bfloat16() if self.dtype == "bfloat16" else model
            self._model = _LOADED[key]
            self.dimension = self._model.get_embedding_dimension()
        return self._model

    def embed(self, texts: list[str]):
        import numpy as np

        vectors = (
            self._load()
            .encode(texts, batch_size=_BATCH, convert_to_numpy=True, show_progress_bar=False)
            .astype(np.float32, copy=False)
        )
        # Normalised here, in fp32: a bfloat16 norm is off by up to ~0.4%.
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
