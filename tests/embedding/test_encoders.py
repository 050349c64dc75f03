"""kb's own encoders — NumPy for queries, torch for ingest in either dtype — must produce
the vectors sentence-transformers does in fp32, on the real packaged model; the graph
runtimes are checked in test_graph_encoders.py."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kb.config import load_settings
from kb.embedding import bert, model_dir, model_id
from kb.embedding.numpy_bert import NumpyBertEmbedder
from kb.embedding.sentence import SentenceTransformerEmbedder
from kb.embedding.torch_bert import TorchBertEmbedder
from tests.conftest import SAMPLE

QUERIES = [
    "how many eggs does a queen lay in a day",
    "When should I treat varroa with oxalic acid?",
    "x",
    "Über Bienen: Königin, Drohnen & Arbeiterinnen — 蜜蜂",
    "",
]


def _texts() -> list[str]:
    # Real passages, including ones longer than the model's 256-piece window (truncated).
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted(SAMPLE.glob("*.md"))).split()
    return QUERIES + [" ".join(words[i : i + n]) for i, n in ((0, 40), (300, 150), (900, 400), (1500, 220))]


@pytest.fixture(scope="module")
def reference():
    settings = load_settings()
    fp32 = SentenceTransformerEmbedder(model_dir(settings), model_id(settings), "float32")
    return settings, fp32.embed(_texts())


def test_numpy_query_encoder_matches_sentence_transformers(reference):
    settings, expected = reference
    assert bert.supports(model_dir(settings))
    got = NumpyBertEmbedder(model_dir(settings), model_id(settings)).embed(_texts())
    assert got.shape == expected.shape and got.dtype == np.float32
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_torch_ingest_encoder_matches_sentence_transformers(reference):
    settings, expected = reference
    got = TorchBertEmbedder(model_dir(settings), model_id(settings), "float32").embed(_texts())
    assert (got * expected).sum(axis=1).min() >= 0.999


def test_bfloat16_ingest_vectors_agree_with_fp32(reference):
    settings, expected = reference
    bf16 = TorchBertEmbedder(model_dir(settings), model_id(settings), "bfloat16").embed(_texts())
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    cosines = (bf16 * expected).sum(axis=1)
    assert cosines.min() >= 0.99, cosines


@pytest.mark.parametrize("dtype", ["auto", "onnx", "float32"])
def test_ingest_encoder_needs_neither_sentence_transformers_nor_transformers(kb_home, dtype):
    code = (
        "import sys, json\n"
        "from kb.config import load_settings\n"
        "from kb.embedding import ingest_runtime, open_embedder\n"
        f"open_embedder(load_settings(embed_dtype={dtype!r})).embed(['a queen lays eggs'])\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers')\n"
        f"print(json.dumps([ingest_runtime({dtype!r}), sorted(m for m in heavy if m in sys.modules)]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    runtime, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    # The graph runtimes need no torch: a small ingest starts in a fraction of torch's ~1 s import.
    assert loaded == (["torch"] if runtime in ("float32", "bfloat16") else []), proc.stderr


def test_search_uses_the_numpy_encoder_without_importing_torch(sample_kb):
    code = (
        "import sys, json\n"
        "from kb.cli.app import main\n"
        "try:\n    main(['search', 'queen laying rate', '--json'])\nexcept SystemExit as e:\n    pass\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'onnxruntime', 'openvino')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    hits = [json.loads(line) for line in proc.stdout.splitlines()]
    assert hits and hits[0]["source"].endswith("bee_biology.md"), proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_cli_import_and_help_load_no_heavy_modules():
    code = (
        "import sys, json\n"
        "import kb.cli.app\n"
        "try:\n    kb.cli.app.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'chromadb', 'onnxruntime', 'openvino', 'onnx')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage" in proc.stdout
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
