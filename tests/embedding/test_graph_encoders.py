"""kb's graph encoders — ONNX Runtime and OpenVINO over a graph kb builds from the packaged
weights — must produce sentence-transformers' fp32 vectors, and cache that graph safely."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kb.config import load_settings
from kb.embedding import model_dir, model_id, onnx_graph
from kb.embedding.numpy_bert import NumpyBertEmbedder
from kb.embedding.onnx_bert import OnnxBertEmbedder
from kb.embedding.sentence import SentenceTransformerEmbedder
from tests.conftest import SAMPLE
from tests.embedding.test_encoders import _texts


@pytest.fixture(scope="module")
def reference():
    settings = load_settings()
    return SentenceTransformerEmbedder(model_dir(settings), model_id(settings), "float32").embed(_texts())


def _check(got: np.ndarray, expected: np.ndarray, floor: float) -> None:
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() >= floor, cosines


def test_onnxruntime_encoder_matches_sentence_transformers(reference, kb_home):
    settings = load_settings()
    got = OnnxBertEmbedder(model_dir(settings), model_id(settings), kb_home / "models").embed(_texts())
    _check(got, reference, 0.999)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_openvino_encoder_matches_sentence_transformers(reference, kb_home, precision):
    openvino_bert = pytest.importorskip("kb.embedding.openvino_bert")
    if precision == "bfloat16" and openvino_bert.supported_precision() != "bfloat16":
        pytest.skip("this CPU has no bf16 kernels in OpenVINO")
    settings = load_settings()
    got = openvino_bert.OpenVinoBertEmbedder(model_dir(settings), model_id(settings), kb_home / "models", precision)
    _check(got.embed(_texts()), reference, 0.999 if precision == "float32" else 0.99)


def test_graph_is_built_once_per_weights_and_written_whole(kb_home, monkeypatch):
    path = model_dir(load_settings())
    cache = kb_home / "models"
    first = onnx_graph.cached_graph(path, cache, fused=True)
    assert onnx_graph.weights_digest(path)[:32] in first.name
    monkeypatch.setattr(onnx_graph, "build", lambda *a, **k: pytest.fail("the cached graph was rebuilt"))
    assert onnx_graph.cached_graph(path, cache, fused=True) == first
    assert [p.name for p in cache.iterdir()] == [first.name]  # no temporary file left behind


def test_a_failed_write_leaves_no_graph(kb_home, monkeypatch):
    path = model_dir(load_settings())
    cache = kb_home / "models"

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        onnx_graph.cached_graph(path, cache, fused=False)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("module", ["kb.embedding.onnx_bert", "kb.embedding.openvino_bert"])
def test_a_second_encoder_in_the_process_reuses_the_loaded_model(kb_home, monkeypatch, module):
    runtime = pytest.importorskip(module)
    cls = runtime.OnnxBertEmbedder if module.endswith("onnx_bert") else runtime.OpenVinoBertEmbedder
    settings = load_settings()
    first = cls(model_dir(settings), model_id(settings), kb_home / "a").embed(["a queen lays eggs"])
    monkeypatch.setattr(runtime, "cached_graph", lambda *a, **k: pytest.fail("the model was loaded again"))
    second = cls(model_dir(settings), model_id(settings), kb_home / "b").embed(["a queen lays eggs"])
    assert np.array_equal(first, second)
    assert not (kb_home / "b").exists()


def _stored(home, kb: str = "default") -> tuple[list[str], np.ndarray]:
    """(embedded text, stored vector) of every chunk, read with a plain Chroma client."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(home / "kbs" / kb / "chroma"), settings=Settings(anonymized_telemetry=False))
    got = client.get_collection(f"kb_{kb}").get(include=["embeddings", "documents", "metadatas"])
    # What the pipeline embedded: the heading path, then the passage (Chunk.embedding_text).
    texts = [f"{m['heading']}\n{d}" if m.get("heading") else d for d, m in zip(got["documents"], got["metadatas"])]
    return texts, np.asarray(got["embeddings"], dtype=np.float32)


@pytest.mark.parametrize(("runtime", "package", "cls"), [
    ("openvino", "openvino", "OpenVinoBertEmbedder"),
    ("onnx", "onnxruntime", "OnnxBertEmbedder"),
])  # fmt: skip
def test_a_kb_ingested_on_a_graph_runtime_is_searched_by_the_numpy_query_encoder(
    make_kb, kb_home, runtime, package, cls
):
    """Ingest and search use different encoders: the stored vectors must be the ones the
    query encoder would compute for the same text, or search quality drops silently."""
    pytest.importorskip(package)
    kb = make_kb(embed_dtype=runtime)
    report = kb.ingest([SAMPLE])
    assert not report.failed and report.chunks_added > 0
    assert type(kb.home.embedder).__name__ == cls
    texts, stored = _stored(kb_home)
    assert len(texts) == report.chunks_added
    query_side = NumpyBertEmbedder(model_dir(kb.settings), model_id(kb.settings)).embed(texts)
    cosines = (stored * query_side).sum(axis=1) / np.linalg.norm(stored, axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    hits = kb.search("How many eggs can a queen lay in one day?", 3)
    assert "bee_biology.md" in [h.source.rsplit("/", 1)[-1] for h in hits]


def _runtime(module: str):
    runtime = pytest.importorskip(module)
    return runtime, runtime.OnnxBertEmbedder if module.endswith("onnx_bert") else runtime.OpenVinoBertEmbedder


@pytest.mark.parametrize("module", ["kb.embedding.onnx_bert", "kb.embedding.openvino_bert"])
def test_threads_that_start_ingesting_together_load_the_model_once(kb_home, monkeypatch, module):
    """The service and `kb worker` share one ingest encoder between the jobs of all KBs."""
    runtime, cls = _runtime(module)
    monkeypatch.setattr(runtime, "_LOADED", {})
    built = []
    real = runtime.cached_graph

    def slow_cached_graph(*args, **kwargs):
        built.append(1)
        time.sleep(0.3)  # wide enough for every thread to arrive while the first one loads
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime, "cached_graph", slow_cached_graph)
    settings = load_settings()
    start = threading.Barrier(3)

    def ingest(i: int) -> np.ndarray:
        encoder = cls(model_dir(settings), model_id(settings), kb_home / "models")
        start.wait()
        return encoder.embed(_texts()[i:])

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(ingest, range(3)))
    assert len(built) == 1
    for i, got in enumerate(results):  # each thread got its own texts' vectors
        assert np.allclose(got, results[0][i:], atol=1e-5)


def test_graph_runtimes_take_the_cpus_kb_may_use_or_omp_num_threads(monkeypatch):
    from kb.concurrency import cpu_threads

    available = len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads() == available
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(available + 8))  # never more than the process may use
    assert cpu_threads() == available
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert cpu_threads() == available


@pytest.mark.parametrize("module", ["kb.embedding.onnx_bert", "kb.embedding.openvino_bert"])
def test_graph_runtimes_run_on_omp_num_threads_without_pinning_or_spinning(kb_home, monkeypatch, module):
    runtime, cls = _runtime(module)
    monkeypatch.setattr(runtime, "_LOADED", {})
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    settings = load_settings()
    encoder = cls(model_dir(settings), model_id(settings), kb_home / "models")
    encoder.embed(["a queen lays eggs"])
    if module.endswith("onnx_bert"):
        options = encoder._session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    else:
        assert encoder._compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert encoder._compiled.get_property("ENABLE_CPU_PINNING") is False


@pytest.mark.parametrize(
    ("runtime", "package"), [("openvino", "openvino"), ("onnx", "onnxruntime"), ("openvino", "onnx")]
)
def test_a_graph_runtime_that_is_not_installed_is_a_one_line_config_error(cli, monkeypatch, runtime, package):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed: find_spec finds nothing, import fails
    monkeypatch.setenv("KB_EMBED_DTYPE", runtime)
    res = cli("ingest", SAMPLE)
    assert res.code == 2, res.err
    assert f"pip install {package}" in res.err and "embed_dtype" in res.err
    assert res.err.strip().count("\n") == 0 and "Traceback" not in res.err


def test_auto_takes_the_fastest_runtime_that_is_installed(monkeypatch):
    from kb.embedding import ingest_runtime, torch_bert

    if importlib.util.find_spec("openvino") is not None:
        assert ingest_runtime("auto") == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setattr(torch_bert, "resolve_dtype", lambda requested: "float32")  # a CPU without bf16
    assert ingest_runtime("auto") == "onnx"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert ingest_runtime("auto") == "float32"
    assert ingest_runtime("onnx") == "onnx"  # an explicit choice is kept, and fails with a ConfigError on use


@pytest.mark.parametrize(
    ("runtime", "module"), [("openvino", "kb.embedding.openvino_bert"), ("onnx", "kb.embedding.onnx_bert")]
)
def test_a_dry_run_on_the_real_model_leaves_no_graph_cache(cli, kb_home, monkeypatch, runtime, module):
    """kb ingest --dry-run calibrates on the ingest encoder and promises to write nothing."""
    monkeypatch.setattr(pytest.importorskip(module), "_LOADED", {})  # as in a new process: nothing loaded yet
    monkeypatch.setenv("KB_EMBED_DTYPE", runtime)
    res = cli("ingest", "--dry-run", "--json", SAMPLE)
    assert res.code == 0, res.err
    assert res.json()["rate_source"] == "calibration" and res.json()["chunks_per_s"] > 0
    assert not kb_home.exists()
