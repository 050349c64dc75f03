"""The query-side encoder: a BERT forward pass in NumPy over the model's own safetensors.

A query is a dozen word pieces, so the forward pass costs about a millisecond; what made
a cold `kb search` slow was importing torch and sentence-transformers (~7 s here). This
module imports only NumPy and `tokenizers`, memory-maps the same `model.safetensors` that
sentence-transformers loads (one source of truth, no export step), and reproduces its
pipeline for BERT models with mean pooling: truncation to `max_seq_length`, mean over
real tokens, L2 normalisation. tests/embedding checks its vectors against
sentence-transformers (cosine ≥ 0.999).

`supports(path)` says whether a model folder has that shape; other models use
sentence-transformers for queries too.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def supports(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text())
        modules = json.loads((path / "modules.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and kinds == ["Transformer", "Pooling", "Normalize"]
        and pooling.get("pooling_mode_mean_tokens") is True
        and not any(v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
        and (path / "model.safetensors").exists()
    )


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors as read-only memory maps: nothing is copied until a layer uses it."""
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in _DTYPES:
            continue
        start, end = info["data_offsets"]
        tensors[name] = raw[start:end].view(_DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    # Numerical Recipes' erfc approximation (fractional error < 1.2e-7): NumPy has no erf,
    # and importing SciPy for one function would cost more than the whole forward pass.
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class NumpyBertEmbedder:
    def __init__(self, path: Path, model_id: str) -> None:
        from tokenizers import Tokenizer

        self.model_id = model_id
        config = json.loads((path / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text()) if (
            path / "sentence_bert_config.json").exists() else {}
        self.dimension = config["hidden_size"]
        self._heads = config["num_attention_heads"]
        self._layers = config["num_hidden_layers"]
        self._eps = config.get("layer_norm_eps", 1e-12)
        max_len = min(st_config.get("max_seq_length", 512), config["max_position_embeddings"])
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.enable_truncation(max_len)
        self._tok.enable_padding(pad_id=config.get("pad_token_id", 0))
        self._w = _load_safetensors(path / "model.safetensors")
        self._fused: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _p(self, name: str) -> np.ndarray:
        return self._w[name] if name in self._w else self._w["bert." + name]

    def _dense(self, x: np.ndarray, *prefixes: str) -> np.ndarray:
        """x @ W.T + b, with W stored as (out, in); several prefixes are fused into one
        product. Weights are transposed into plain contiguous arrays once, on first use:
        BLAS on a transposed memory map is several times slower."""
        key = prefixes
        if key not in self._fused:
            weight = np.concatenate([self._p(p + ".weight") for p in prefixes], axis=0)
            self._fused[key] = (np.ascontiguousarray(weight.T, dtype=np.float32),
                                np.concatenate([self._p(p + ".bias") for p in prefixes]).astype(np.float32))
        weight, bias = self._fused[key]
        return x @ weight + bias

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self._tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        n, length = ids.shape
        x = (self._p("embeddings.word_embeddings.weight")[ids]
             + self._p("embeddings.position_embeddings.weight")[:length][None]
             + self._p("embeddings.token_type_embeddings.weight")[types]).astype(np.float32)
        x = _layer_norm(x, self._p("embeddings.LayerNorm.weight"), self._p("embeddings.LayerNorm.bias"), self._eps)
        head = self.dimension // self._heads
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for i in range(self._layers):
            p = f"encoder.layer.{i}"

            def split(t):
                return t.reshape(n, length, self._heads, head).transpose(0, 2, 1, 3)

            qkv = self._dense(x, f"{p}.attention.self.query", f"{p}.attention.self.key", f"{p}.attention.self.value")
            q, k, v = (split(t) for t in np.split(qkv, 3, axis=-1))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dimension)
            x = _layer_norm(x + self._dense(context, f"{p}.attention.output.dense"),
                            self._p(f"{p}.attention.output.LayerNorm.weight"),
                            self._p(f"{p}.attention.output.LayerNorm.bias"), self._eps)
            hidden = self._dense(x, f"{p}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + _erf(hidden / np.float32(np.sqrt(2.0))))
            x = _layer_norm(x + self._dense(hidden.astype(np.float32), f"{p}.output.dense"),
                            self._p(f"{p}.output.LayerNorm.weight"), self._p(f"{p}.output.LayerNorm.bias"), self._eps)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
