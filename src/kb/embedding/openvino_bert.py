"""The ingest encoder on OpenVINO: the BERT forward pass as a standard-op ONNX graph
(onnx_graph.py, built from the model's own weights and cached under
`$KB_HOME/models/onnx/`), compiled by OpenVINO's CPU plugin.

OpenVINO picks its kernels from the CPU it finds (its own CPUID checks): bfloat16 where the
CPU has AVX512-BF16 or AMX, fp32 with AVX2/FMA kernels elsewhere. `precision="auto"` asks
the plugin which it supports, so nothing here needs torch; the tests hold both modes to
sentence-transformers' fp32 vectors. Texts are sorted by length and batched as in
torch_bert.py; rows come back L2-normalised.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from kb.concurrency import cpu_threads
from kb.embedding.bert import BertModelFiles, length_batches
from kb.embedding.onnx_graph import cached_graph

_BATCH = 32
# One loaded model per process, model folder, requested precision and thread count, whichever KB_HOME
# cached the graph: a second KnowledgeBase (a service, the benchmark) reuses it instead of
# hashing the weights, creating an OpenVINO Core and compiling again (0.7-0.9 s measured).
_LOADED: dict[tuple[str, str, int], tuple[BertModelFiles, str, Any]] = {}
_LOADING = threading.Lock()  # ingest jobs of two KBs may start at once: compile once


def import_openvino() -> ModuleType:
    """OpenVINO without its telemetry. `import openvino` alone sends a usage event to Google
    Analytics and writes a client id under ~/intel (the openvino-telemetry package, on unless
    a consent file or CI=true says otherwise); kb talks to no one it was not told to. Every
    use of the package in OpenVINO falls back to its own no-op stub when it cannot be imported."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


def supported_precision() -> str:
    """ "bfloat16" if OpenVINO's CPU plugin has bf16 kernels for this CPU, else "float32"."""
    ov = import_openvino()

    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bfloat16" if "BF16" in capabilities else "float32"


class OpenVinoBertEmbedder:
    def __init__(
        self,
        path: Path,
        model_id: str,
        cache_dir: Path,
        precision: str = "auto",
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
        self._requested = precision
        self.dtype: str | None = None  # resolved on load
        self._m: BertModelFiles | None = None
        self._compiled: Any = None
        self.dimension = 0

    def _load(self):
        if self._compiled is None:
            key = (str(self._path), self._requested, self.threads)
            with _LOADING:
                if key not in _LOADED:
                    _LOADED[key] = self._read()
                self._m, self.dtype, self._compiled = _LOADED[key]
            self.dimension = self._m.hidden
        return self._compiled

    def _read(self) -> tuple[BertModelFiles, str, Any]:
        ov = import_openvino()

        dtype = supported_precision() if self._requested == "auto" else self._requested
        m = BertModelFiles(self._path)
        graph = cached_graph(self._path, self._cache_dir, fused=False, m=m, store=self._store_graph)
        core = ov.Core()
        model = core.read_model(graph if isinstance(graph, bytes) else str(graph))
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if dtype == "bfloat16" else "f32",
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            # Pinned threads cannot move off a core that the service's query threads, a
            # second kb process or anything else keeps busy (the plugin pins by default on
            # Linux; measured under load in docs/benchmarks.md).
            "ENABLE_CPU_PINNING": False,
        }
        return m, dtype, core.compile_model(model, "CPU", config)

    def embed(self, texts: list[str]) -> np.ndarray:
        compiled = self._load()
        assert self._m is not None
        ids, mask, _ = self._m.encode(texts)  # token types are all 0 for single texts
        ids, mask = ids.astype(np.int32), mask.astype(np.int32)
        request = compiled.create_infer_request()
        output = compiled.output(0)
        out = np.empty((len(texts), self._m.hidden), dtype=np.float32)
        for rows, width in length_batches(mask, self.batch):
            feed = {"input_ids": ids[rows, :width], "attention_mask": mask[rows, :width]}
            out[rows] = request.infer(feed)[output]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
