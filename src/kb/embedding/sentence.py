"""all-MiniLM-L6-v2 (or another local model) through sentence-transformers."""

from __future__ import annotations

import os
from pathlib import Path

from kb.errors import ConfigError

_BATCH = 32
_LOADED: dict[str, object] = {}  # one model per process, however many KnowledgeBase objects


class SentenceTransformerEmbedder:
    def __init__(self, path: Path, model_id: str) -> None:
        self.model_id = model_id
        self._path = path
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

            key = str(self._path)
            if key not in _LOADED:
                try:
                    _LOADED[key] = SentenceTransformer(key, device="cpu")
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"cannot load the embedding model from {key} ({exc}); check KB_MODEL") from exc
            self._model = _LOADED[key]
            self.dimension = self._model.get_embedding_dimension()
        return self._model

    def embed(self, texts: list[str]):
        model = self._load()
        return model.encode(
            texts, batch_size=_BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype("float32", copy=False)
