"""Where kb's ingest time goes, and which encoder runtime is fastest on this CPU.

    python benchmarks/encoders.py [--every 3] [--reps 3] [--runtimes a,b] [--json FILE]
    python benchmarks/avx2/emulate.py python benchmarks/encoders.py ...   # AVX2 code paths

On the benchmark prose corpus (benchmarks/corpus.py; `--every 3` is a third of it):

1. Stages, one after another in this process: reading + parsing + chunking (the chunker's
   tokenizer counts included), the encoder's tokenizer, the encoder's forward pass, Chroma
   writes, and the whole `KnowledgeBase.ingest` for comparison (which overlaps reading
   with encoding on a second thread).
2. Token counts: word pieces per chunk, padding with length-sorted batches, the share of
   the work that chunk overlap and repeated headings add.
3. Runtimes, interleaved (A B C A B C ...) so that drift from other work on the machine
   hits them alike: chunks/s median and range, cosine to sentence-transformers fp32, and
   for approximate modes (bf16, int8) self-retrieval quality as benchmarks/run.py
   measures it.
4. Start-up: whole processes that load each encoder and embed one text.

Every figure is printed with the CPU's flags and the emulation in force.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import prose_corpus  # noqa: E402
from run import _chunk_texts, _quality  # noqa: E402

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "avx_vnni")


def cpu_report() -> dict:
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    import torch

    return {
        "flags": {f: f in flags for f in FLAGS},
        "emulation": os.environ.get("KB_CPU_EMULATION", "none"),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "cores": len(os.sched_getaffinity(0)),
    }


def describe(cpu: dict) -> str:
    have = " ".join(f for f, on in cpu["flags"].items() if on)
    return (
        f"CPU flags (/proc/cpuinfo): {have}; emulation: {cpu['emulation']}; torch sees {cpu['torch_capability']}, "
        f"oneDNN bf16 {'yes' if cpu['onednn_bf16'] else 'no'}; {cpu['cores']} cores"
    )


# -- runtimes ------------------------------------------------------------------------------
class _OrtPlain:
    """Standard-op graph, ORT's own graph optimisations (ORT_ENABLE_ALL)."""

    dtype = "onnx-plain"

    def __init__(self, path: Path, work: Path) -> None:
        from kb.embedding import onnx_graph
        from kb.embedding.bert import BertModelFiles
        from kb.embedding.onnx_bert import open_session

        self.m = BertModelFiles(path)
        file = work / "plain.onnx"
        file.write_bytes(onnx_graph.build(self.m, fused=False))
        self.session = open_session(file)

    def embed(self, texts):
        return _run_batches(
            self.m, texts, lambda ids, mask: self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        )


class _OrtInt8:
    """The fused graph with dynamic int8 quantisation of the MatMul/Attention weights
    (per channel); `keep_down` leaves the FFN output projections in fp32 (GELU outputs have
    the widest range), `reduce_range` uses 7-bit weights (no int16 saturation in AVX2's
    vpmaddubsw)."""

    dtype = "onnx-int8"

    def __init__(self, path: Path, work: Path, keep_down: bool = False, reduce_range: bool = False) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from kb.embedding.bert import BertModelFiles
        from kb.embedding.onnx_bert import open_session
        from kb.embedding.onnx_graph import cached_graph

        self.m = BertModelFiles(path)
        fused = cached_graph(path, work, fused=True)
        file = work / f"int8-{keep_down}-{reduce_range}.onnx"
        quantize_dynamic(
            str(fused),
            str(file),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            nodes_to_exclude=[f"l{i}_down" for i in range(self.m.layers)] if keep_down else [],
            extra_options={"DefaultTensorType": 1},  # FLOAT: shape inference cannot type contrib-op outputs
        )
        self.session = open_session(file)

    def embed(self, texts):
        return _run_batches(
            self.m, texts, lambda ids, mask: self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        )


class _OpenVino:
    """The standard-op graph on OpenVINO's CPU plugin (`precision` f32 or bf16)."""

    def __init__(self, path: Path, work: Path, precision: str, batch: int = 32) -> None:
        from kb.embedding import onnx_graph
        from kb.embedding.bert import BertModelFiles
        from kb.embedding.openvino_bert import import_openvino

        ov = import_openvino()

        self.dtype = f"openvino-{precision}"
        self.batch = batch
        self.m = BertModelFiles(path)
        file = work / "plain-ov.onnx"
        if not file.exists():
            file.write_bytes(onnx_graph.build(self.m, fused=False))
        config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": len(os.sched_getaffinity(0))}
        self.model = ov.Core().compile_model(str(file), "CPU", config)
        self.request = self.model.create_infer_request()

    def embed(self, texts):
        def forward(ids, mask):
            return self.request.infer({"input_ids": ids, "attention_mask": mask})[self.model.output(0)]

        return _run_batches(self.m, texts, forward, self.batch)


class _OpenVinoInt8:
    """Static int8 on OpenVINO: the standard-op graph with QuantizeLinear/DequantizeLinear
    pairs (ONNX Runtime's `quantize_static`: int8 weights per channel, uint8 activations
    with MinMax ranges from the first 256 chunks), which OpenVINO's CPU plugin runs as int8
    matrix products. The two attention products stay fp32; `keep_down` also leaves the FFN
    output projections in fp32, as _OrtInt8 does."""

    def __init__(self, path: Path, work: Path, texts: list[str], keep_down: bool = False) -> None:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        from kb.embedding import onnx_graph
        from kb.embedding.bert import BertModelFiles, length_batches
        from kb.embedding.openvino_bert import import_openvino

        ov = import_openvino()

        self.dtype = "openvino-int8"
        self.m = BertModelFiles(path)
        plain = work / "plain-int8-source.onnx"
        plain.write_bytes(onnx_graph.build(self.m, fused=False))
        graph = onnx.load(str(plain))
        weights = {w.name for w in graph.graph.initializer}
        products = [n for n in graph.graph.node if n.op_type == "MatMul"]
        exclude = [n.name for n in products if n.input[1] not in weights]
        exclude += [n.name for n in products if keep_down and n.input[1].endswith("down_w")]
        ids, mask, _ = self.m.encode(texts[:256])
        ids, mask = ids.astype(np.int32), mask.astype(np.int32)
        feeds = iter(
            [
                {"input_ids": np.ascontiguousarray(ids[r, :w]), "attention_mask": np.ascontiguousarray(mask[r, :w])}
                for r, w in length_batches(mask, 32)
            ]
        )

        class Feeds(CalibrationDataReader):
            def get_next(self):
                return next(feeds, None)

        file = work / f"int8-static-{keep_down}.onnx"
        quantize_static(
            str(plain),
            str(file),
            Feeds(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=exclude,
        )
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": len(os.sched_getaffinity(0))}
        self.model = ov.Core().compile_model(str(file), "CPU", config)
        self.request = self.model.create_infer_request()

    def embed(self, texts):
        def forward(ids, mask):
            return self.request.infer({"input_ids": ids, "attention_mask": mask})[self.model.output(0)]

        return _run_batches(self.m, texts, forward)


def _run_batches(m, texts, forward, batch: int = 32):
    from kb.embedding.bert import length_batches

    ids, mask, _ = m.encode(texts)
    ids, mask = ids.astype(np.int32), mask.astype(np.int32)
    out = np.empty((len(texts), m.hidden), dtype=np.float32)
    for rows, width in length_batches(mask, batch):
        out[rows] = forward(np.ascontiguousarray(ids[rows, :width]), np.ascontiguousarray(mask[rows, :width]))
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def make_runtimes(names: list[str], path: Path, work: Path, bf16: bool, texts: list[str]) -> dict:
    from kb.embedding.onnx_bert import OnnxBertEmbedder
    from kb.embedding.torch_bert import TorchBertEmbedder

    factories = {
        "torch-fp32": lambda: TorchBertEmbedder(path, "bench", "float32"),
        "torch-bf16": lambda: TorchBertEmbedder(path, "bench", "bfloat16"),
        "ort-fused": lambda: OnnxBertEmbedder(path, "bench", work),
        "ort-fused-b64": lambda: OnnxBertEmbedder(path, "bench", work, batch=64),
        "ort-fused-b16": lambda: OnnxBertEmbedder(path, "bench", work, batch=16),
        "ort-plain": lambda: _OrtPlain(path, work),
        "ort-int8": lambda: _OrtInt8(path, work),
        "ort-int8-keepdown": lambda: _OrtInt8(path, work, keep_down=True),
        "ort-int8-rr": lambda: _OrtInt8(path, work, reduce_range=True),
        "openvino-fp32-b64": lambda: _OpenVino(path, work, "f32", batch=64),
        "openvino-fp32": lambda: _OpenVino(path, work, "f32"),
        "openvino-bf16": lambda: _OpenVino(path, work, "bf16"),
        "openvino-int8": lambda: _OpenVinoInt8(path, work, texts),
        "openvino-int8-keepdown": lambda: _OpenVinoInt8(path, work, texts, keep_down=True),
    }
    out = {}
    for name in names:
        if name.endswith("bf16") and not bf16:
            print(f"  {name}: skipped (no bf16 on this code path)", flush=True)
            continue
        try:
            out[name] = factories[name]()
        except ImportError as exc:
            print(f"  {name}: skipped ({exc})", flush=True)
    return out


# -- measurements --------------------------------------------------------------------------
def token_stats(m, texts: list[str], batch: int = 32) -> dict:
    from kb.embedding.bert import length_batches

    _, mask, _ = m.encode(texts)
    lengths = mask.sum(1).astype(int)
    sorted_pad = sum(width * len(rows) for rows, width in length_batches(mask, batch))
    unsorted_pad = sum(
        int(lengths[i : i + batch].max()) * len(lengths[i : i + batch]) for i in range(0, len(lengths), batch)
    )
    real = int(lengths.sum())
    return {
        "chunks": len(texts),
        "pieces_real": real,
        "pieces_mean": round(real / len(texts), 1),
        "truncated": int((lengths >= m.max_len).sum()),
        "padding_sorted": round(sorted_pad / real - 1, 4),
        "padding_unsorted": round(unsorted_pad / real - 1, 4),
    }


def chunk_stats(settings, corpus: Path, count) -> dict:
    """What overlap and repeated headings add: the same corpus chunked without overlap, and
    the chunks' word pieces with and without their heading line."""
    from dataclasses import replace

    from kb import KnowledgeBase
    from kb.ingest import readers
    from kb.ingest.discovery import discover
    from kb.options import IngestScope

    out = {}
    for overlap in (settings.chunk_overlap, 0):
        chunker = KnowledgeBase(replace(settings, chunk_overlap=overlap)).home.chunker
        chunks = [
            c for p in discover(IngestScope.of([corpus])).files for c in chunker.chunk(readers.read(p, p.read_bytes()))
        ]
        out[overlap] = {
            "chunks": len(chunks),
            "pieces": sum(count(c.embedding_text()) for c in chunks),
            "pieces_text_only": sum(count(c.text) for c in chunks),
        }
    with_overlap, without = out[settings.chunk_overlap], out[0]
    return {
        "chunks": with_overlap["chunks"],
        "chunks_without_overlap": without["chunks"],
        "overlap_share": round(1 - without["pieces"] / with_overlap["pieces"], 4),
        "heading_share": round(1 - with_overlap["pieces_text_only"] / with_overlap["pieces"], 4),
    }


def stages(settings, corpus: Path, texts: list[str], encoder, work: Path) -> dict:
    from kb import KnowledgeBase
    from kb.embedding import model_dir
    from kb.embedding.bert import BertModelFiles
    from kb.ingest import readers
    from kb.ingest.discovery import discover
    from kb.options import IngestScope
    from kb.store.local import LocalChromaStore

    out = {}
    t = time.perf_counter()
    files = discover(IngestScope.of([corpus])).files
    chunker = KnowledgeBase(settings).home.chunker
    chunks = [c for p in files for c in chunker.chunk(readers.read(p, p.read_bytes()))]
    out["read_parse_chunk_s"] = time.perf_counter() - t
    m = BertModelFiles(model_dir(settings))
    t = time.perf_counter()
    for i in range(0, len(texts), 1024):
        m.encode(texts[i : i + 1024])
    out["tokenize_s"] = time.perf_counter() - t
    t = time.perf_counter()
    vectors = np.vstack([encoder.embed(texts[i : i + 1024]) for i in range(0, len(texts), 1024)])
    out["embed_s"] = time.perf_counter() - t
    out["forward_s"] = out["embed_s"] - out["tokenize_s"]
    store = LocalChromaStore(work / "stage-store", "bench")
    t = time.perf_counter()
    for i in range(0, len(chunks), 1024):
        store.add(chunks[i : i + 1024], vectors[i : i + 1024])
    out["store_s"] = time.perf_counter() - t
    store.close()
    kb = KnowledgeBase(load_settings_home(work / "stage-kb"))
    kb.__dict__["embedder"] = encoder  # the same loaded encoder: no load time in the figure
    report = kb.ingest([corpus])
    out["kb_ingest_s"] = report.seconds
    out["sum_of_stages_s"] = out["read_parse_chunk_s"] + out["embed_s"] + out["store_s"]
    return {k: round(v, 3) for k, v in out.items()}


def load_settings_home(home: Path):
    from kb.config import load_settings

    return load_settings(home=str(home))


def throughput(runtimes: dict, texts: list[str], reps: int, slice_size: int = 128) -> dict:
    """Each runtime embeds the same slices of `slice_size` chunks in turn (A B C, A B C, ...
    per slice), `reps` times over. Slices take 1-5 s, so a burst of other work on the
    machine lands on neighbouring runtimes alike; the paired ratio per slice against the
    first runtime is the robust comparison. Rates are per pass over all texts."""
    for encoder in runtimes.values():
        encoder.embed(texts[:64])  # load and warm, outside the timings
    names = list(runtimes)
    slices = [texts[i : i + slice_size] for i in range(0, len(texts), slice_size)]
    seconds: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    vectors: dict[str, list] = {name: [] for name in names}
    for rep in range(reps):
        total = dict.fromkeys(names, 0.0)
        for part in slices:
            took = {}
            for name in names if rep % 2 == 0 else names[::-1]:  # ABC CBA: no runtime always goes first
                t = time.perf_counter()
                out = runtimes[name].embed(part)
                took[name] = time.perf_counter() - t
                if rep == 0:
                    vectors[name].append(out)
            for name in names:
                total[name] += took[name]
                ratios[name].append(took[names[0]] / took[name])
        for name in names:
            seconds[name].append(total[name])
    return {
        "rates": {name: [len(texts) / t for t in seconds[name]] for name in names},
        "speedup_vs_first": ratios,
        "vectors": {name: np.vstack(parts) for name, parts in vectors.items()},
    }


STARTUP = """
import sys, time
t = time.perf_counter()
sys.path.insert(0, {src!r})
from pathlib import Path
from kb.embedding import model_dir
from kb.config import load_settings
path = model_dir(load_settings())
kind = {kind!r}
if kind.startswith("torch"):
    from kb.embedding.torch_bert import TorchBertEmbedder
    e = TorchBertEmbedder(path, "x", kind.split("-")[1])
elif kind == "openvino":
    from kb.embedding.openvino_bert import OpenVinoBertEmbedder
    e = OpenVinoBertEmbedder(path, "x", Path({cache!r}))
else:
    from kb.embedding.onnx_bert import OnnxBertEmbedder
    e = OnnxBertEmbedder(path, "x", Path({cache!r}))
e.embed(["a queen lays eggs"])
print(time.perf_counter() - t)
"""


def startup(kinds: list[str], work: Path, reps: int) -> dict:
    src = str(HERE.parent / "src")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cold = []
    from kb.embedding import model_dir
    from kb.embedding.onnx_graph import cached_graph

    for fused in (True, False):  # the warm figures use graphs cached beforehand
        cached_graph(model_dir(load_settings_home(work / "h")), work / "startup-cache", fused=fused)
    for rep in range(reps):
        for kind in kinds:
            cache = work / "startup-cache"
            code = STARTUP.format(src=src, kind=kind, cache=str(cache))
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", code],
                check=True,
                capture_output=True,
                env=dict(os.environ, KB_HOME=str(work / "h")),
            )
            times[kind].append(time.perf_counter() - t)
        if "ort-fused" in kinds:  # first run ever: builds and caches the graph
            code = STARTUP.format(src=src, kind="ort-fused", cache=str(work / f"cold-{rep}"))
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", code],
                check=True,
                capture_output=True,
                env=dict(os.environ, KB_HOME=str(work / "h")),
            )
            cold.append(time.perf_counter() - t)
    if cold:
        times["ort-fused (first run, builds the graph)"] = cold
    return times


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} (range {min(values):.1f}-{max(values):.1f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=3, help="use every n-th document of the prose corpus")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per runtime")
    parser.add_argument(
        "--runtimes",
        default="torch-fp32,torch-bf16,ort-fused,ort-plain,openvino-fp32,openvino-bf16,ort-int8,ort-int8-keepdown",
        help="comma-separated, the first is the reference for paired ratios; also ort-fused-b16, ort-fused-b64, "
        "ort-int8-rr, openvino-fp32-b64, openvino-int8, openvino-int8-keepdown",
    )
    parser.add_argument("--no-stages", action="store_true")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from kb.embedding import model_dir, model_id
    from kb.embedding.bert import BertModelFiles
    from kb.embedding.numpy_bert import NumpyBertEmbedder
    from kb.embedding.sentence import SentenceTransformerEmbedder
    from kb.embedding.tokens import WordPieces

    cpu = cpu_report()
    print(describe(cpu), flush=True)
    raw: dict = {"cpu": cpu, "args": vars(args) | {"json": str(args.json)}}
    with tempfile.TemporaryDirectory(prefix="kb-encoders-") as tmp:
        work = Path(tmp)
        corpus = work / "prose"
        prose_corpus(corpus, every=args.every)
        settings = load_settings_home(work / "home")
        path = model_dir(settings)
        texts = _chunk_texts(settings, corpus)
        m = BertModelFiles(path)
        raw["tokens"] = token_stats(m, texts)
        raw["chunking"] = chunk_stats(settings, corpus, WordPieces(path).count)
        print(f"tokens: {raw['tokens']}\nchunking: {raw['chunking']}", flush=True)

        runtimes = make_runtimes(args.runtimes.split(","), path, work, cpu["onednn_bf16"], texts)
        result = throughput(runtimes, texts, args.reps)
        reference = SentenceTransformerEmbedder(path, model_id(settings), "float32").embed(texts)
        queries = NumpyBertEmbedder(path, model_id(settings))
        raw["runtimes"] = {}
        first = next(iter(result["rates"]))
        for name, rates in result["rates"].items():
            vectors = result["vectors"][name]
            cos = (vectors * reference).sum(1)
            speedup = result["speedup_vs_first"][name]
            entry = {
                "chunks_per_s": rates,
                "speedup_vs_first_per_slice": speedup,
                "cos_min": float(cos.min()),
                "cos_mean": float(cos.mean()),
            }
            if "bf16" in name or "int8" in name:
                entry["quality"] = _quality(texts, reference, vectors, queries)
            raw["runtimes"][name] = entry
            q = entry.get("quality")
            print(
                f"  {name:<18} chunks/s {summary(rates)}, best {max(rates):.1f}; "
                f"x{statistics.median(speedup):.2f} vs {first} per slice "
                f"(IQR {np.percentile(speedup, 25):.2f}-{np.percentile(speedup, 75):.2f}, n={len(speedup)}); "
                f"cos min {cos.min():.5f} mean {cos.mean():.6f}"
                + (
                    f"; self-retrieval hit@5 {q['candidate']['hit@5']:.3f} vs fp32 {q['reference']['hit@5']:.3f}, "
                    f"MRR {q['candidate']['mrr']:.3f} vs {q['reference']['mrr']:.3f}"
                    if q
                    else ""
                ),
                flush=True,
            )
        if not args.no_stages:
            from kb.embedding import ingest_runtime, open_embedder

            encoder = open_embedder(settings)  # what `embed_dtype = "auto"` picks here
            encoder.embed(texts[:64])
            raw["stages"] = {"encoder": ingest_runtime("auto"), "dtype": encoder.dtype}
            raw["stages"].update(stages(settings, corpus, texts, encoder, work))
            print(f"stages: {raw['stages']}", flush=True)
        if not args.no_startup:
            kinds = ["torch-fp32"] + (["torch-bf16"] if cpu["onednn_bf16"] else []) + ["ort-fused", "openvino"]
            raw["startup_s"] = startup(kinds, work, args.reps)
            for kind, times in raw["startup_s"].items():
                print(f"  start-up {kind}: {summary(times)} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
