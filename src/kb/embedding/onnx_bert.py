"""The BERT forward pass on ONNX Runtime: `embed_dtype = "onnx"`, and `auto`'s fp32
choice where OpenVINO is not installed. It starts fastest (~0.4 s for a whole process) and
measured 1.2-1.3x torch fp32 on AVX2 code paths, below OpenVINO's 1.4-1.6x
(docs/benchmarks.md).

The graph is built by kb itself from the model's `model.safetensors` (onnx_graph.py, with
ORT's fused attention / layer-norm / GELU kernels) and cached under `$KB_HOME/models/onnx/`;
nothing is downloaded. Later runs import only onnxruntime (~0.1 s, against ~1 s for torch)
and load the cached file.

Texts are sorted by length and batched as in torch_bert.py; rows come back L2-normalised.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from kb.concurrency import cpu_threads
from kb.embedding.bert import BertModelFiles, length_batches
from kb.embedding.onnx_graph import cached_graph

_BATCH = 32
# One loaded model per process, model folder and thread count, whichever KB_HOME cached the graph: a
# second KnowledgeBase reuses it instead of hashing the weights and opening a session.
_LOADED: dict[tuple[str, int], tuple[BertModelFiles, Any]] = {}
_LOADING = threading.Lock()  # ingest jobs of two KBs may start at once: load and build once


def open_session(model_file: Path | bytes, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    # Idle pool threads spin by default. They share two cores with the service's query
    # threads and other processes: spinning cost ingest time and query latency alike when
    # measured under load (docs/benchmarks.md), as NumPy's BLAS threads did (numpy_bert.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings would reach the terminal; errors still raise
    model = model_file if isinstance(model_file, bytes) else str(model_file)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxBertEmbedder:
    dtype = "onnx-float32"

    def __init__(
        self,
        path: Path,
        model_id: str,
        cache_dir: Path,
        batch: int = _BATCH,
        store_graph: bool = True,
        threads: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.batch = batch
        self.threads = threads or cpu_threads()  # `kb worker --threads`: several workers share the cores
        self._path = path
        self._cache_dir = cache_dir
        self._store_graph = store_graph
        self._m: BertModelFiles | None = None
        self._session: Any = None
        self.dimension = 0

    def _load(self):
        if self._session is None:
            key = (str(self._path), self.threads)
            with _LOADING:
                if key not in _LOADED:
                    m = BertModelFiles(self._path)
                    graph = cached_graph(self._path, self._cache_dir, fused=True, m=m, store=self._store_graph)
                    _LOADED[key] = (m, open_session(graph, self.threads))
                self._m, self._session = _LOADED[key]
            self.dimension = self._m.hidden
        return self._session

    def embed(self, texts: list[str]) -> np.ndarray:
        session = self._load()
        assert self._m is not None
        ids, mask, _ = self._m.encode(texts)  # token types are all 0 for single texts
        ids, mask = ids.astype(np.int32), mask.astype(np.int32)
        out = np.empty((len(texts), self._m.hidden), dtype=np.float32)
        for rows, width in length_batches(mask, self.batch):
            feed = {"input_ids": ids[rows, :width], "attention_mask": mask[rows, :width]}
            out[rows] = session.run(None, feed)[0]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
