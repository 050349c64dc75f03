"""What kb's own BERT encoders share: the model folder's shape, its tokenizer, its weights.

kb runs the packaged all-MiniLM-L6-v2 (and any sentence-transformers BERT model with mean
pooling) without importing sentence-transformers: NumPy for queries (numpy_bert.py), torch
for ingest batches (torch_bert.py). Both read the folder's own `model.safetensors` and
reproduce sentence-transformers' pipeline — truncation to `max_seq_length`, mean over real
tokens, L2 normalisation — and tests/embedding checks both against it. Other models go
through sentence-transformers itself (sentence.py).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
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


class BertModelFiles:
    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text())
        st_config = (
            json.loads((path / "sentence_bert_config.json").read_text())
            if (path / "sentence_bert_config.json").exists()
            else {}
        )
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        self.max_len = min(st_config.get("max_seq_length", 512), config["max_position_embeddings"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_len)
        self.tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))
        self._w = _load_safetensors(path / "model.safetensors")

    def param(self, name: str) -> np.ndarray:
        return self._w[name] if name in self._w else self._w["bert." + name]

    def linear(self, *prefixes: str) -> tuple[np.ndarray, np.ndarray]:
        """(W as (in, out), b) of one or more Linear layers side by side, as plain arrays."""
        weight = np.concatenate([self.param(p + ".weight") for p in prefixes], axis=0)
        bias = np.concatenate([self.param(p + ".bias") for p in prefixes])
        return np.ascontiguousarray(weight.T, dtype=np.float32), bias.astype(np.float32)

    def layer_names(self, i: int) -> dict[str, tuple[str, ...]]:
        p = f"encoder.layer.{i}"
        return {
            "qkv": (f"{p}.attention.self.query", f"{p}.attention.self.key", f"{p}.attention.self.value"),
            "out": (f"{p}.attention.output.dense",),
            "ln1": (f"{p}.attention.output.LayerNorm",),
            "up": (f"{p}.intermediate.dense",),
            "down": (f"{p}.output.dense",),
            "ln2": (f"{p}.output.LayerNorm",),
        }

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, attention mask, token types), padded to the longest text."""
        encodings = self.tokenizer.encode_batch(list(texts))
        return (
            np.array([e.ids for e in encodings], dtype=np.int64),
            np.array([e.attention_mask for e in encodings], dtype=np.float32),
            np.array([e.type_ids for e in encodings], dtype=np.int64),
        )


def length_batches(mask: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, int]]:
    """(rows, width) batches of `size` rows, longest texts first, each cut to the width its
    longest text needs: sorted by length, a batch pads little (sentence-transformers sorts
    the same way)."""
    lengths = mask.sum(1).astype(np.int64)
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        yield rows, int(lengths[rows].max())
