"""The BERT forward pass with mean pooling as an ONNX graph, built from the model's own
weights (bert.py) with `onnx.helper`: nothing is downloaded and torch is not needed.

Two forms of the same function:

- `fused=True` uses ONNX Runtime's CPU contrib kernels for transformers
  (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu) — the graph
  ORT's transformers optimizer would produce, written out directly so that no pattern
  matching can silently miss a fusion.
- `fused=False` uses standard ONNX ops only (opset 17), for other runtimes (OpenVINO) and
  for comparing with ORT's own graph optimisations.

Inputs are `input_ids` and `attention_mask` (int32, right-padded); token types are always
0 for single texts, so type embedding 0 is folded into the position embeddings. The output
is the mean of the last hidden states over real tokens (n, hidden), not yet L2-normalised.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kb.embedding.bert import BertModelFiles

OPSET = 17
CONTRIB = "com.microsoft"
GRAPH_VERSION = "1"  # part of the cache key: bump whenever this module changes the graph


def weights_digest(path: Path) -> str:
    with (path / "model.safetensors").open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cached_graph(
    path: Path, cache_dir: Path, fused: bool, m: BertModelFiles | None = None, store: bool = True
) -> Path | bytes:
    """The graph for the model folder `path`, built on first use and kept in `cache_dir`
    under the weights' SHA-256 (~50 ms to hash). Written to a temporary name, flushed and
    renamed, so a crash or a concurrent kb never leaves a half-written file under that name.
    With `store=False` (kb ingest --dry-run, which writes nothing) a graph not cached yet is
    returned as bytes instead; both runtimes read either."""
    kind = "fused" if fused else "plain"
    target = cache_dir / f"bert-{weights_digest(path)[:32]}-{kind}-g{GRAPH_VERSION}.onnx"
    if target.exists():
        return target
    blob = build(m or BertModelFiles(path), fused=fused)
    if not store:
        return blob
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


class _Graph:
    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.weights.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(
        self, kind: str, inputs: list[str], outputs: int = 1, domain: str = "", name: str = "", **attrs
    ) -> list[str]:
        self._n += 1
        name = name or f"{kind}_{self._n}"
        names = [f"{name}_{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(kind, inputs, names, name=name, domain=domain or None, **attrs))
        return names

    def one(self, kind: str, inputs: list[str], domain: str = "", name: str = "", **attrs) -> str:
        return self.op(kind, inputs, 1, domain, name, **attrs)[0]


def build(m: BertModelFiles, fused: bool = True) -> bytes:
    """The serialised ModelProto (~90 MB of fp32 weights for MiniLM-L6)."""
    from onnx import TensorProto, helper

    g = _Graph()
    f32 = np.float32
    word = np.asarray(m.param("embeddings.word_embeddings.weight"), dtype=f32)
    position = np.asarray(m.param("embeddings.position_embeddings.weight"), dtype=f32)
    position = position + np.asarray(m.param("embeddings.token_type_embeddings.weight"), dtype=f32)[0]
    ln_w = np.asarray(m.param("embeddings.LayerNorm.weight"), dtype=f32)
    ln_b = np.asarray(m.param("embeddings.LayerNorm.bias"), dtype=f32)
    if fused:
        x, mask_index = g.op(
            "EmbedLayerNormalization",
            [
                "input_ids",
                "",
                g.const("word", word),
                g.const("position", position),
                "",
                g.const("ln_w", ln_w),
                g.const("ln_b", ln_b),
                "attention_mask",
            ],
            outputs=2,
            domain=CONTRIB,
            epsilon=m.eps,
        )
        for i in range(m.layers):
            x = _fused_layer(g, m, i, x, mask_index)
    else:
        x = _plain_embeddings(g, word, position, ln_w, ln_b, m.eps)
        length = g.one("Shape", ["input_ids"], start=1, end=2)
        blocked = _plain_mask(g)
        for i in range(m.layers):
            x = _plain_layer(g, m, i, x, length, blocked)
    weights = g.one(
        "Unsqueeze", [g.one("Cast", ["attention_mask"], to=TensorProto.FLOAT), g.const("axis2", np.array([2]))]
    )
    summed = g.one("ReduceSum", [g.one("Mul", [x, weights]), g.const("axis1", np.array([1]))], keepdims=0)
    count = g.one(
        "Max",
        [
            g.one("ReduceSum", [weights, g.const("axis1b", np.array([1]))], keepdims=0),
            g.const("tiny", np.array(1e-9, f32)),
        ],
    )
    g.nodes.append(helper.make_node("Div", [summed, count], ["pooled"]))
    dims = ["batch", "length"]
    graph = helper.make_graph(
        g.nodes,
        "kb_bert_mean_pooling",
        [helper.make_tensor_value_info(name, TensorProto.INT32, dims) for name in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", m.hidden])],
        g.weights,
    )
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid(CONTRIB, 1)] if fused else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="kb")
    model.ir_version = 8
    return model.SerializeToString()


def _fused_layer(g: _Graph, m: BertModelFiles, i: int, x: str, mask_index: str) -> str:
    names = m.layer_names(i)
    qkv_w, qkv_b = m.linear(*names["qkv"])
    out_w, out_b = m.linear(*names["out"])
    up_w, up_b = m.linear(*names["up"])
    down_w, down_b = m.linear(*names["down"])
    p = f"l{i}_"
    context = g.one(
        "Attention",
        [x, g.const(p + "qkv_w", qkv_w), g.const(p + "qkv_b", qkv_b), mask_index],
        CONTRIB,
        num_heads=m.heads,
    )
    x = g.one(
        "SkipLayerNormalization",
        [
            g.one("MatMul", [context, g.const(p + "out_w", out_w)]),
            x,
            *_ln(g, m, names["ln1"][0], p + "ln1"),
            g.const(p + "out_b", out_b),
        ],
        CONTRIB,
        epsilon=m.eps,
    )
    hidden = g.one("BiasGelu", [g.one("MatMul", [x, g.const(p + "up_w", up_w)]), g.const(p + "up_b", up_b)], CONTRIB)
    return g.one(
        "SkipLayerNormalization",
        [
            g.one("MatMul", [hidden, g.const(p + "down_w", down_w)], name=p + "down"),
            x,
            *_ln(g, m, names["ln2"][0], p + "ln2"),
            g.const(p + "down_b", down_b),
        ],
        CONTRIB,
        epsilon=m.eps,
    )


def _ln(g: _Graph, m: BertModelFiles, prefix: str, name: str) -> list[str]:
    return [
        g.const(name + "_w", np.asarray(m.param(prefix + ".weight"), dtype=np.float32)),
        g.const(name + "_b", np.asarray(m.param(prefix + ".bias"), dtype=np.float32)),
    ]


def _plain_embeddings(g: _Graph, word, position, ln_w, ln_b, eps: float) -> str:
    length = g.one("Shape", ["input_ids"], start=1, end=2)
    first = g.one("Slice", [g.const("position", position), g.const("zero", np.array([0])), length])
    ids = g.one("Cast", ["input_ids"], to=7)  # int64 for Gather
    x = g.one("Add", [g.one("Gather", [g.const("word", word), ids]), first])
    return g.one("LayerNormalization", [x, g.const("ln_w", ln_w), g.const("ln_b", ln_b)], axis=-1, epsilon=eps)


def _plain_mask(g: _Graph) -> str:
    """(n, 1, 1, L): 0 for real tokens, -1e9 for padding, added to the attention scores."""
    mask = g.one("Cast", ["attention_mask"], to=1)
    blocked = g.one(
        "Mul",
        [g.one("Sub", [g.const("one", np.array(1.0, np.float32)), mask]), g.const("neg", np.array(-1e9, np.float32))],
    )
    return g.one("Unsqueeze", [blocked, g.const("axes12", np.array([1, 2]))])


def _plain_layer(g: _Graph, m: BertModelFiles, i: int, x: str, length: str, blocked: str) -> str:
    names = m.layer_names(i)
    head = m.hidden // m.heads
    p = f"l{i}_"

    def dense(inp: str, key: str) -> str:
        w, b = m.linear(*names[key])
        return g.one("Add", [g.one("MatMul", [inp, g.const(p + key + "_w", w)]), g.const(p + key + "_b", b)])

    batch = g.one("Shape", [x], start=0, end=1)
    shape = g.one("Concat", [batch, length, g.const(p + "split", np.array([3, m.heads, head]))], axis=0)
    qkv = g.one("Transpose", [g.one("Reshape", [dense(x, "qkv"), shape])], perm=[2, 0, 3, 1, 4])
    axis0 = g.const(p + "axis0", np.array([0]))
    q, k, v = (g.one("Squeeze", [part, axis0]) for part in g.op("Split", [qkv], outputs=3, axis=0))
    scores = g.one("MatMul", [q, g.one("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = g.one(
        "Add", [g.one("Mul", [scores, g.const(p + "scale", np.array(1 / math.sqrt(head), np.float32))]), blocked]
    )
    context = g.one("MatMul", [g.one("Softmax", [scores], axis=-1), v])
    flat = g.one("Concat", [batch, length, g.const(p + "hidden", np.array([m.hidden]))], axis=0)
    context = g.one("Reshape", [g.one("Transpose", [context], perm=[0, 2, 1, 3]), flat])
    x = _plain_norm(g, m, g.one("Add", [x, dense(context, "out")]), names["ln1"][0], p + "ln1")
    up = dense(x, "up")
    gelu = g.one(
        "Mul",
        [
            g.one("Mul", [up, g.const(p + "half", np.array(0.5, np.float32))]),
            g.one(
                "Add",
                [
                    g.one("Erf", [g.one("Div", [up, g.const(p + "sqrt2", np.array(math.sqrt(2.0), np.float32))])]),
                    g.const(p + "one", np.array(1.0, np.float32)),
                ],
            ),
        ],
    )
    return _plain_norm(g, m, g.one("Add", [x, dense(gelu, "down")]), names["ln2"][0], p + "ln2")


def _plain_norm(g: _Graph, m: BertModelFiles, x: str, prefix: str, name: str) -> str:
    return g.one("LayerNormalization", [x, *_ln(g, m, prefix, name)], axis=-1, epsilon=m.eps)
