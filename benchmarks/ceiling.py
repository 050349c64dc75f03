"""The arithmetic behind target 2b: how much work kb and LlamaIndex (its defaults) hand the
encoder on the abstract-sized notes, and how fast this CPU can do that work at all.

    python benchmarks/ceiling.py [--notes 1000] [--json FILE]
    python benchmarks/avx2/emulate.py python benchmarks/ceiling.py   # AVX2 code paths

1. Work: word pieces embedded and cut off by the model's 256-piece window, and the forward
   pass's floating-point operations for every sequence as each pipeline batches it, from
   the model's dimensions (matrix products and attention; the small element-wise ops are
   left out). kb: its chunks in length-sorted batches of 32, padded to the longest.
   LlamaIndex: SentenceSplitter() nodes with their metadata, ten at a time
   (HuggingFaceEmbedding's batch) in document order, padded, truncated at 256 pieces; and,
   counted only, its nodes at equal coverage (benchmarks/llamaindex_ingest.py).
2. Peak: the best fp32 matrix-multiply rate measured here, on the encoder's own GEMM shapes
   (32 sequences of 128 tokens against each weight matrix), compiled by OpenVINO's CPU plugin
   and run by torch, on every core the process may use.
3. Achieved: kb's ingest encoder (what `embed_dtype = "auto"` picks) over kb's chunks and
   LlamaIndex's HuggingFaceEmbedding over its nodes, each timed once, in GFLOP/s.

From these it prints the shortest time kb's encoder could take if it ran at the measured
peak, and the LlamaIndex / kb ratio that would give against LlamaIndex's encoder as
measured: an upper bound for fp32, since kb's whole ingest also reads, chunks and stores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus import notes_corpus  # noqa: E402
from cpu import cpu_line  # noqa: E402
from run import _chunk_texts  # noqa: E402

WINDOW = 256
KB_BATCH = 32  # kb.embedding.openvino_bert._BATCH
LI_BATCH = 10  # HuggingFaceEmbedding's embed_batch_size default


def forward_flops(width: int, rows: int, hidden: int, ffn: int, layers: int) -> float:
    """Floating-point operations (2 per multiply-add) of one BERT forward pass over `rows`
    sequences padded to `width`: the four weight products and the two attention products."""
    per_token = 2 * hidden * (3 * hidden) + 2 * hidden * hidden + 2 * 2 * hidden * ffn
    attention = 2 * 2 * width * hidden  # scores and context, per token
    return float(layers * rows * width * (per_token + attention))


def batched_flops(lengths: list[int], batch: int, sort: bool, dims: tuple[int, int, int]) -> tuple[float, int]:
    """(operations, padded tokens) for sequences of these lengths, batched as described."""
    order = sorted(lengths, reverse=True) if sort else lengths
    total, padded = 0.0, 0
    for i in range(0, len(order), batch):
        part = order[i : i + batch]
        width = min(max(part), WINDOW)
        total += forward_flops(width, len(part), *dims)
        padded += width * len(part)
    return total, padded


def gemm_peak(hidden: int, ffn: int, threads: int) -> dict[str, float]:
    """Best GFLOP/s of OpenVINO (fp32 hint) and torch on the encoder's weight products."""
    import torch

    from kb.embedding.openvino_bert import import_openvino

    ov = import_openvino()
    import openvino.opset13 as ops

    tokens = 32 * 128
    shapes = [(hidden, 3 * hidden), (hidden, hidden), (hidden, ffn), (ffn, hidden)]
    rng = np.random.default_rng(0)
    best = {"openvino": 0.0, "torch": 0.0}
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    torch.set_num_threads(threads)
    for k, n in shapes:
        x = rng.standard_normal((tokens, k)).astype(np.float32)
        w = rng.standard_normal((k, n)).astype(np.float32)
        param = ops.parameter([tokens, k], ov.Type.f32)
        compiled = core.compile_model(
            ov.Model([ops.matmul(param, ops.constant(w), False, False)], [param]), "CPU", config
        )
        request = compiled.create_infer_request()
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        flops = 2.0 * tokens * k * n
        calls = {"openvino": partial(request.infer, [x]), "torch": partial(torch.mm, tx, tw)}
        for name, call in calls.items():
            call()
            times = []
            for _ in range(20):
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
            best[name] = max(best[name], flops / min(times) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from tokenizers import Tokenizer

    from kb.config import load_settings
    from kb.embedding import model_dir, open_embedder

    print(f"{cpu_line()}; emulation: {os.environ.get('KB_CPU_EMULATION', 'none')}", flush=True)
    threads = len(os.sched_getaffinity(0))
    raw: dict = {"cpu": cpu_line(), "threads": threads, "notes": args.notes}
    with tempfile.TemporaryDirectory(prefix="kb-ceiling-") as tmp:
        folder = Path(tmp) / "notes"
        notes_corpus(folder, args.notes)
        settings = load_settings(home=str(Path(tmp) / "home"))
        path = model_dir(settings)
        config = json.loads((path / "config.json").read_text())
        dims = (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"])
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()

        kb_texts = _chunk_texts(settings, folder)
        docs = SimpleDirectoryReader(str(folder), recursive=True).load_data()
        li_texts = [n.get_content(MetadataMode.EMBED) for n in SentenceSplitter().get_nodes_from_documents(docs)]
        equal = SentenceSplitter(  # benchmarks/llamaindex_ingest.py's equal coverage: every node fits the window
            chunk_size=200,
            chunk_overlap=32,
            include_metadata=False,
            tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids,
        )
        li_equal = [n.get_content(MetadataMode.EMBED) for n in equal.get_nodes_from_documents(docs)]
        work = {}
        for name, texts, batch, sort in (
            ("kb", kb_texts, KB_BATCH, True),
            ("llamaindex", li_texts, LI_BATCH, False),
            ("llamaindex-equal-coverage", li_equal, LI_BATCH, False),
        ):
            full = [len(tok.encode(t).ids) for t in texts]  # with [CLS] and [SEP], as the model reads it
            lengths = [min(n, WINDOW) for n in full]
            flops, padded = batched_flops(lengths, batch, sort, dims)
            work[name] = {
                "sequences": len(texts),
                "pieces": sum(lengths),
                "truncated_pieces": sum(full) - sum(lengths),
                "padded": padded,
                "gflop": flops / 1e9,
            }
            print(
                f"work {name}: {len(texts)} sequences, {sum(lengths)} word pieces embedded "
                f"({sum(full) - sum(lengths)} cut off by the window, {padded} with padding), {flops / 1e12:.2f} TFLOP",
                flush=True,
            )
        ratio = work["kb"]["gflop"] / work["llamaindex"]["gflop"]
        print(f"kb hands the encoder {ratio:.2f}x LlamaIndex's work", flush=True)
        raw["work"] = work

        peak = gemm_peak(dims[0], dims[1], threads)
        best = max(peak.values())
        raw["gemm_gflops"] = peak
        print(f"fp32 GEMM peak, {threads} threads: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))

        encoder = open_embedder(settings)
        encoder.embed(kb_texts[:8])
        t = time.perf_counter()
        encoder.embed(kb_texts)
        kb_s = time.perf_counter() - t
        li_model = HuggingFaceEmbedding(model_name=str(path), device="cpu")
        li_model.get_text_embedding_batch(li_texts[:8])
        t = time.perf_counter()
        li_model.get_text_embedding_batch(li_texts)
        li_s = time.perf_counter() - t
        for name, seconds in (("kb", kb_s), ("llamaindex", li_s)):
            rate = work[name]["gflop"] / seconds
            work[name] |= {"encoder_s": seconds, "gflops": rate}
            print(f"encoder {name}: {seconds:.1f} s, {rate:.0f} GFLOP/s ({rate / best:.0%} of the GEMM peak)")
        raw["kb_encoder"] = getattr(encoder, "dtype", None)
        floor = work["kb"]["gflop"] / best
        raw["kb_floor_s"] = floor
        raw["best_ratio"] = li_s / floor
        print(
            f"kb's encoder at the GEMM peak would take {floor:.1f} s; against LlamaIndex's encoder ({li_s:.1f} s) "
            f"that is a ratio of at most {li_s / floor:.2f}, before kb reads, chunks or stores anything"
        )
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
