"""The query-side encoder: a BERT forward pass in NumPy (see bert.py).

A query is a dozen word pieces, so the forward pass costs milliseconds (bound by reading
~42 MB of weights); what made a cold `kb search` slow was importing torch and
sentence-transformers (~7 s here). This imports only NumPy and `tokenizers`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kb.embedding.bert import BertModelFiles

BATCH = 32  # texts per forward pass


def _erf(x: np.ndarray) -> np.ndarray:
    # Numerical Recipes' erfc approximation (fractional error < 1.2e-7): NumPy has no erf,
    # and importing SciPy for one function would cost more than the whole forward pass.
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))
                    )
                )
            )
        )
    )
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _one_blas_thread() -> None:
    """NumPy's OpenBLAS on one thread. Its threads spin while they wait, and when anything
    else wants the CPU (the server's other requests, an ingest, another process) a 2-thread
    product crawls: 64 queries took 40 s instead of 0.6 s on this 2-core machine under load.
    Query batches are small, so one thread loses little when the machine is idle. The limit
    is process-wide but touches only NumPy's BLAS: torch and Chroma bring their own."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class NumpyBertEmbedder:
    def __init__(self, path: Path, model_id: str) -> None:
        self.model_id = model_id
        _one_blas_thread()
        self._m = BertModelFiles(path)
        self.dimension = self._m.hidden
        self._linear: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _dense(self, x: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
        # Transposed into contiguous arrays once, on first use: BLAS on a transposed
        # memory map is several times slower.
        if prefixes not in self._linear:
            self._linear[prefixes] = self._m.linear(*prefixes)
        weight, bias = self._linear[prefixes]
        return x @ weight + bias

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return _layer_norm(x, self._m.param(prefix + ".weight"), self._m.param(prefix + ".bias"), self._m.eps)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Texts sorted by length and encoded in batches cut to their own longest text: a
        batch padded to one long sentence would cost every short query its length."""
        ids, mask, types = self._m.encode(texts)
        lengths = mask.sum(1).astype(np.int64)
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self._m.hidden), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            width = int(lengths[rows].max())
            out[rows] = self._forward(ids[rows, :width], mask[rows, :width], types[rows, :width])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        m = self._m
        n, length = ids.shape
        x = (
            m.param("embeddings.word_embeddings.weight")[ids]
            + m.param("embeddings.position_embeddings.weight")[:length][None]
            + m.param("embeddings.token_type_embeddings.weight")[types]
        ).astype(np.float32)
        x = self._norm(x, "embeddings.LayerNorm")
        head = m.hidden // m.heads
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for i in range(m.layers):
            names = m.layer_names(i)
            qkv = self._dense(x, names["qkv"]).reshape(n, length, 3, m.heads, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, m.hidden)
            x = self._norm(x + self._dense(context, names["out"]), names["ln1"][0])
            hidden = self._dense(x, names["up"])
            hidden = (0.5 * hidden * (1.0 + _erf(hidden / np.float32(np.sqrt(2.0))))).astype(np.float32)
            x = self._norm(x + self._dense(hidden, names["down"]), names["ln2"][0])
        return ((x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)).astype(np.float32)
