"""The torch ingest encoder (`embed_dtype = "float32"` or `"bfloat16"`): the same BERT
forward pass in torch (see bert.py). `auto` prefers OpenVINO (openvino_bert.py), which
measured faster in both modes (docs/benchmarks.md); this stays for explicit choice and as
the bf16 path where OpenVINO is not installed.

Importing sentence-transformers costs ~3–6 s here (it pulls in transformers and
scikit-learn) on top of torch's ~1 s; this needs torch alone, which matters for the common
small `kb ingest` of a few changed files. Texts are sorted by length and batched, as
sentence-transformers does, so batches pad little. bfloat16 where oneDNN supports it
(AVX512-BF16 / AMX: 1.8–2x fp32 here, cosine ≥ 0.9999 against fp32), fp32 elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kb.embedding.bert import BertModelFiles, length_batches

_BATCH = 32
_LOADED: dict[tuple[str, str], tuple] = {}  # one copy of the weights per process and dtype


def use_threads(threads: int | None) -> None:
    """torch's intra-op threads for this process (`kb worker --threads`), when given: a
    setting of the whole process, which is what a worker's encoder is."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def resolve_dtype(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


class TorchBertEmbedder:
    def __init__(self, path: Path, model_id: str, dtype: str = "auto", threads: int | None = None) -> None:
        self.model_id = model_id
        self._path = path
        self._requested = dtype
        self.threads = threads
        self.dtype: str | None = None  # resolved on load: asking torch means importing it
        self._weights = None
        self.dimension = 0

    def _load(self):
        if self._weights is None:
            use_threads(self.threads)
            self.dtype = resolve_dtype(self._requested)
            key = (str(self._path), self.dtype)
            if key not in _LOADED:
                _LOADED[key] = self._read(self.dtype)
            self._m, self._weights = _LOADED[key]
            self.dimension = self._m.hidden
        return self._weights

    def _read(self, dtype: str):
        import torch

        kind = torch.bfloat16 if dtype == "bfloat16" else torch.float32
        m = BertModelFiles(self._path)

        def t(array: np.ndarray):
            return torch.from_numpy(np.array(array, dtype=np.float32)).to(kind)

        layers = []
        for i in range(m.layers):
            names = m.layer_names(i)
            layer = {}
            for key in ("qkv", "out", "up", "down"):
                weight, bias = m.linear(*names[key])
                layer[key] = (t(weight.T), t(bias))  # F.linear wants (out, in)
            for key in ("ln1", "ln2"):
                layer[key] = (t(m.param(names[key][0] + ".weight")), t(m.param(names[key][0] + ".bias")))
            layers.append(layer)
        return m, {
            "word": t(m.param("embeddings.word_embeddings.weight")),
            "position": t(m.param("embeddings.position_embeddings.weight")),
            "type": t(m.param("embeddings.token_type_embeddings.weight")),
            "ln": (t(m.param("embeddings.LayerNorm.weight")), t(m.param("embeddings.LayerNorm.bias"))),
            "layers": layers,
        }

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        w = self._load()
        m = self._m
        ids, mask, types = m.encode(texts)  # padded to the longest text overall
        out = np.empty((len(texts), m.hidden), dtype=np.float32)
        with torch.inference_mode():
            for rows, width in length_batches(mask, _BATCH):
                batch = (torch.from_numpy(np.ascontiguousarray(a[rows, :width])) for a in (ids, mask, types))
                out[rows] = self._forward(w, *batch).float().numpy()
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)  # in fp32: a bf16 norm is off by ~0.4%
        return out

    def _forward(self, w, ids, mask, types):
        import torch.nn.functional as F

        m = self._m
        n, length = ids.shape
        x = w["word"][ids] + w["position"][:length][None] + w["type"][types]
        x = _norm(x, w["ln"], m.eps)
        keep = mask.bool()[:, None, None, :]
        head = m.hidden // m.heads
        for layer in w["layers"]:
            qkv = F.linear(x, *layer["qkv"]).view(n, length, 3, m.heads, head).permute(2, 0, 3, 1, 4)
            context = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=keep)
            context = context.transpose(1, 2).reshape(n, length, m.hidden)
            x = _norm(x + F.linear(context, *layer["out"]), layer["ln1"], m.eps)
            hidden = F.gelu(F.linear(x, *layer["up"]))
            x = _norm(x + F.linear(hidden, *layer["down"]), layer["ln2"], m.eps)
        weights = mask.to(x.dtype)[:, :, None]
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _norm(x, weight_bias, eps: float):
    import torch.nn.functional as F

    weight, bias = weight_bias
    return F.layer_norm(x, (x.shape[-1],), weight=weight, bias=bias, eps=eps)
