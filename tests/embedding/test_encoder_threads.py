"""`kb worker --threads N` (and `[embedding] threads`, KB_EMBEDDING_THREADS) reaches the ingest
encoder: the thread count OpenVINO compiled the model with, ONNX Runtime's intra-op threads,
torch's. The real packaged model, loaded by each runtime."""

from __future__ import annotations

import pytest

from kb.config import load_settings
from kb.embedding import open_embedder


def test_openvino_compiles_with_the_threads_asked_for(kb_home):
    pytest.importorskip("kb.embedding.openvino_bert")  # not `openvino`: its import phones home
    for threads in (1, 2):
        settings = load_settings(embed_dtype="openvino")
        settings.embedding.threads = threads
        encoder = open_embedder(settings, store_graph=False)
        assert encoder.embed(["bees make honey"]).shape == (1, 384)
        assert int(encoder._compiled.get_property("INFERENCE_NUM_THREADS")) == threads


def test_onnxruntime_session_has_the_threads_asked_for(kb_home):
    pytest.importorskip("onnxruntime")
    settings = load_settings(embed_dtype="onnx")
    settings.embedding.threads = 1
    encoder = open_embedder(settings, store_graph=False)
    encoder.embed(["bees make honey"])
    assert encoder._session.get_session_options().intra_op_num_threads == 1


def test_torch_runs_on_the_threads_asked_for(kb_home):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    settings = load_settings(embed_dtype="float32")
    settings.embedding.threads = 1
    try:
        open_embedder(settings).embed(["bees make honey"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_default_is_one_thread_per_core(kb_home):
    pytest.importorskip("kb.embedding.openvino_bert")  # not `openvino`: its import phones home
    from kb.concurrency import cpu_threads

    assert open_embedder(load_settings(embed_dtype="openvino"), store_graph=False).threads == cpu_threads()


def test_kb_worker_threads_option_reaches_the_encoder(kb_home, cli, monkeypatch):
    """The CLI's --threads, else KB_EMBEDDING_THREADS, is what the worker's encoder is opened with."""
    import kb.worker

    opened = []

    def run_worker(settings, workers, say):
        opened.append(open_embedder(settings, store_graph=False))

    monkeypatch.setattr(kb.worker, "run_worker", run_worker)
    monkeypatch.setenv("KB_EMBED_DTYPE", "onnx")
    assert cli("worker", "--threads", "1").code == 0
    monkeypatch.setenv("KB_EMBEDDING_THREADS", "2")
    assert cli("worker").code == 0
    assert cli("worker", "--threads", "1").code == 0  # the flag wins over the environment
    assert [e.threads for e in opened] == [1, 2, 1]
    assert cli("worker", "--threads", "0").code == 2


def test_worker_start_line_names_its_encoder_threads(kb_home):
    from kb.worker import _encoder

    settings = load_settings()
    settings.embedding.threads = 3
    assert _encoder(settings) == "3 encoder threads"
