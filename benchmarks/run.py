"""kb's benchmark suite: every issue-4 target measured in one run, next to its goal.

    python benchmarks/run.py [--quick] [--sizes 10000,100000,1000000] [--no-llamaindex]

Inputs are generated into a temporary folder (benchmarks/corpus.py). Throughput targets
are ratios between kb and a reference measured in the same run — the bare encoder, or
LlamaIndex's IngestionPipeline — because the machine is shared and absolute times drift.
Start-up targets are whole-process wall times, reported with the bare interpreter's start
as the reference. Prints one table of medians; `--json FILE` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from corpus import notes_corpus, prose_corpus  # noqa: E402

KB = [str(Path(sys.executable).parent / "kb")]  # the installed entry point, as users run it
ROWS: list[tuple[str, str, str, bool | None]] = []
RAW: dict[str, object] = {}


def row(target: str, goal: str, measured: str, met: bool | None) -> None:
    ROWS.append((target, goal, measured, met))
    print(f"  {target}: {measured}  (goal {goal})", flush=True)


def wall(cmd: list[str], env: dict, stdin: str | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, proc


def env_for(home: Path) -> dict:
    env = dict(os.environ, KB_HOME=str(home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("OPENAI_API_KEY", None)  # the chain is extractive-only: no network, deterministic
    return env


# -- target 4: start-up ------------------------------------------------------------------
def bench_startup(work: Path, reps: int) -> None:
    print("start-up (whole processes)", flush=True)
    env = env_for(work / "startup")
    wall(KB + ["ingest", str(ROOT / "sample_corpus"), "--json"], env)
    question = "When should I treat varroa with oxalic acid?"
    wall(KB + ["ask", question, "--json"], env)
    python = statistics.median(wall([sys.executable, "-c", "pass"], env)[0] for _ in range(reps))
    helps = [wall(KB + ["--help"], env)[0] for _ in range(reps)]
    asks = []
    for _ in range(reps):
        t, proc = wall(KB + ["ask", question, "--json"], env)
        assert json.loads(proc.stdout)["cached"], "the repeated ask was not served from the cache"
        asks.append(t)
    searches = [
        wall(KB + ["search", f"how do bees survive winter number {i}", "-k", "5", "--json"], env)[0]
        for i in range(reps)
    ]  # a new query each time: no query-embedding cache hit
    # The reference a user meets first: what a script built on sentence-transformers pays to start.
    st = statistics.median(wall([sys.executable, "-c", "import sentence_transformers"], env)[0] for _ in range(reps))
    RAW["startup"] = {"python_s": python, "help_s": helps, "cached_ask_s": asks, "cold_search_s": searches,
                      "import_sentence_transformers_s": st}  # fmt: skip
    for name, goal, share, times in (
        ("kb --help", 0.3, 30, helps),
        ("cached kb ask", 0.5, 20, asks),
        ("cold kb search", 2.5, 8, searches),
    ):
        median = statistics.median(times)
        row(f"4. {name}", f"≤ {goal} s and ≤ 1/{share} of import sentence_transformers ({st:.2f} s)",
            f"{median:.2f} s ({median / python:.1f}x bare python, 1/{st / median:.0f} of the import)",
            median <= goal and median <= st / share)  # fmt: skip


# -- targets 1 and 2: ingest throughput --------------------------------------------------
def _chunk_texts(settings, corpus: Path) -> list[str]:
    from kb import KnowledgeBase
    from kb.ingest import readers
    from kb.ingest.discovery import discover
    from kb.options import IngestScope

    chunker = KnowledgeBase(settings).home.chunker
    texts = []
    for path in discover(IngestScope.of([corpus])).files:
        texts += [c.embedding_text() for c in chunker.chunk(readers.read(path, path.read_bytes()))]
    return texts


def _quality(texts: list[str], reference, candidate, query_encoder) -> dict:
    """Self-retrieval: the middle sentence of every 4th chunk must find its chunk; hit@5 and
    MRR with the candidate's document vectors against the reference's."""
    import numpy as np

    picks = [i for i in range(0, len(texts), 4) if len(texts[i].split(". ")) > 2]
    queries = [texts[i].split(". ")[len(texts[i].split(". ")) // 2] for i in picks]
    q = query_encoder.embed(queries)
    out = {}
    for name, docs in (("reference", reference), ("candidate", candidate)):
        ranks = []
        for row_scores, want in zip(q @ docs.T, picks):
            ranks.append(int((row_scores > row_scores[want]).sum()) + 1)
        ranks = np.array(ranks)
        out[name] = {"hit@5": float((ranks <= 5).mean()), "mrr": float((1 / ranks).mean())}
    out["queries"] = len(queries)
    return out


def bench_ingest(work: Path, quick: bool, llamaindex: bool) -> None:
    import numpy as np

    from kb import KnowledgeBase
    from kb.config import load_settings
    from kb.embedding import ingest_runtime, model_dir, model_id, open_embedder
    from kb.embedding.sentence import SentenceTransformerEmbedder
    from kb.embedding.torch_bert import TorchBertEmbedder

    print("ingest", flush=True)
    corpus = work / "prose"
    size = prose_corpus(corpus, every=3 if quick else 1)
    files = len(list(corpus.iterdir()))
    settings = load_settings(home=str(work / "inproc-0"))
    texts = _chunk_texts(settings, corpus)
    encoder = open_embedder(settings)
    encoder.embed(texts[:64])  # load and warm, outside every timing
    mode = f"{ingest_runtime('auto')} {encoder.dtype}"  # what embed_dtype = "auto" picked on this CPU
    RAW["auto_encoder"] = mode
    print(f"  corpus: {files} files, {size / 1e6:.1f} MB, {len(texts)} chunks; auto encoder: {mode}", flush=True)
    bare, ours = [], []
    for rep in range(1 if quick else 2):  # interleaved, so drift hits both alike
        t = time.perf_counter()
        vectors = encoder.embed(texts)
        bare.append(len(texts) / (time.perf_counter() - t))
        kb = KnowledgeBase(load_settings(home=str(work / f"inproc-{rep}")))
        _ = kb.embedder  # the same process-wide model, already loaded
        report = kb.ingest([corpus])
        assert not report.failed and report.chunks_added == len(texts), (report.failed, report.chunks_added)
        ours.append(report.chunks_added / report.seconds)
    ratio = statistics.median(ours) / statistics.median(bare)
    RAW["ingest"] = {
        "files": files,
        "bytes": size,
        "chunks": len(texts),
        "encoder": mode,
        "bare_chunks_per_s": bare,
        "kb_chunks_per_s": ours,
    }
    row(
        "1. kb ingest / bare encoder (warm, same chunks)",
        "≥ 0.90",
        f"{ratio:.2f} ({statistics.median(ours):.1f} vs {statistics.median(bare):.1f} chunks/s)",
        ratio >= 0.90,
    )

    # Speed: against kb's torch encoder in fp32 (what a CPU without bf16 ran before).
    # Vectors and quality: sentence-transformers in fp32, the reference implementation.
    fp32 = TorchBertEmbedder(model_dir(settings), model_id(settings), "float32")
    fp32.embed(texts[:64])
    t = time.perf_counter()
    fp32.embed(texts)
    fp32_rate = len(texts) / (time.perf_counter() - t)
    reference = SentenceTransformerEmbedder(model_dir(settings), model_id(settings), "float32").embed(texts)
    cosines = (reference * vectors).sum(axis=1)
    quality = _quality(texts, reference, vectors, open_embedder(settings, for_queries=True))
    RAW["numeric_mode"] = {
        "fp32_chunks_per_s": fp32_rate,
        "cos_min": float(cosines.min()),
        "cos_mean": float(cosines.mean()),
        "quality": quality,
    }
    row(f"1. {mode} vs torch fp32 encoder speed", "fastest mode", f"{statistics.median(bare) / fp32_rate:.2f}x", None)
    row(
        f"1. {mode} vs sentence-transformers fp32 vectors",
        "cos ≥ 0.99",
        f"min {cosines.min():.4f}, mean {cosines.mean():.5f}",
        bool(cosines.min() >= 0.99),
    )
    ref_q, cand_q = quality["reference"], quality["candidate"]
    row(
        "1. retrieval quality vs fp32 (self-retrieval)",
        "no drop",
        f"hit@5 {cand_q['hit@5']:.3f} vs {ref_q['hit@5']:.3f}, MRR {cand_q['mrr']:.3f} vs {ref_q['mrr']:.3f} "
        f"({quality['queries']} queries)",
        cand_q["mrr"] >= ref_q["mrr"] - 0.01,
    )
    del vectors, reference, np

    kb_time, proc = wall(KB + ["ingest", str(corpus), "--json"], env_for(work / "cli"))
    kb_chunks = json.loads(proc.stdout)["chunks_added"]
    RAW["ingest"]["kb_process_s"] = kb_time
    if not llamaindex:
        row("2. LlamaIndex / kb, whole process", "≥ 2.0", f"skipped (kb alone: {kb_time:.1f} s)", None)
        return
    li_time, li = _llamaindex(work, corpus, "prose", defaults=False)
    RAW["llamaindex"] = {"process_s": li_time, **li}
    row(
        "2. LlamaIndex (equal coverage) / kb, whole process",
        "≥ 2.0",
        f"{li_time / kb_time:.2f} ({li_time:.1f} s, {li['chunks']} chunks vs {kb_time:.1f} s, {kb_chunks} chunks)",
        li_time / kb_time >= 2.0,
    )


def _llamaindex(work: Path, folder: Path, tag: str, defaults: bool) -> tuple[float, dict]:
    cmd = [sys.executable, str(HERE / "llamaindex_ingest.py"), str(folder), str(work / f"li-{tag}")]
    t, proc = wall(cmd + (["--defaults"] if defaults else []), env_for(work / f"li-{tag}-home"))
    return t, json.loads(proc.stdout.strip().splitlines()[-1])


def bench_llamaindex_notes(work: Path, quick: bool) -> None:
    """The issue's comparison: documents the size of scientific abstracts (1-3 KB), whole
    processes. LlamaIndex with its defaults makes ~1 node per note and the model reads only
    its first 256 word pieces; with equal coverage its nodes fit the window, as kb's do.
    kb runs before and after the two, and its median is used."""
    print("LlamaIndex on abstract-sized notes", flush=True)
    count = 200 if quick else 1000
    folder = work / "li-notes"
    size = notes_corpus(folder, count)
    kb_times, kb_chunks = [], 0
    li = {}
    for step in ("kb", "defaults", "equal", "kb"):
        if step == "kb":
            t, proc = wall(KB + ["ingest", str(folder), "--json"], env_for(work / f"li-notes-kb-{len(kb_times)}"))
            kb_times.append(t)
            kb_chunks = json.loads(proc.stdout)["chunks_added"]
        else:
            li[step] = _llamaindex(work, folder, f"notes-{step}", step == "defaults")
    kb_time = statistics.median(kb_times)
    RAW["llamaindex_notes"] = {"notes": count, "bytes": size, "kb_s": kb_times, "kb_chunks": kb_chunks}
    # The goals for LlamaIndex's defaults: 2.4x where kb runs in bf16, 1.5x elsewhere.
    goal = 2.4 if "bfloat16" in str(RAW.get("auto_encoder")) else 1.5
    for step in ("defaults", "equal"):
        t, result = li[step]
        RAW["llamaindex_notes"][step] = {"process_s": t, **result}
        ratio = t / kb_time
        label = "its defaults" if step == "defaults" else "equal coverage"
        row(
            f"2b. LlamaIndex ({label}) / kb, {count} notes ({size / 1e6:.1f} MB)",
            f"≥ {goal}" if step == "defaults" else "report",
            f"{ratio:.2f} ({t:.1f} s, {result['chunks']} nodes, {result['truncated']} over 256 pieces "
            f"vs {kb_time:.1f} s, {kb_chunks} chunks)",
            ratio >= goal if step == "defaults" else None,
        )


# -- target 3: re-ingest -----------------------------------------------------------------
_REINGEST = (
    "import json, sys, time\n"
    "from kb.cli.app import main\n"
    "t = time.perf_counter()\n"
    "try:\n    main(['ingest', sys.argv[1], '--json'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    "print(json.dumps({'loaded': sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules)}),"
    " file=sys.stderr)\n"
)


def bench_reingest(work: Path, quick: bool) -> None:
    print("re-ingest", flush=True)
    count = 200 if quick else 1000
    folder = work / "notes"
    size = notes_corpus(folder, count)
    env = env_for(work / "reingest")
    first, _ = wall([sys.executable, "-c", _REINGEST, str(folder)], env)
    again = []
    for _ in range(3):
        t, proc = wall([sys.executable, "-c", _REINGEST, str(folder)], env)
        report = json.loads(proc.stdout)
        assert report["unchanged"] == count, report
        loaded = json.loads(proc.stderr.strip().splitlines()[-1])["loaded"]
        again.append(t)
    median = statistics.median(again)
    RAW["reingest"] = {"files": count, "bytes": size, "first_s": first, "again_s": again, "model_loaded": loaded}
    row(
        f"3. re-ingest unchanged {count} notes ({size / 1e6:.1f} MB) / first ingest",
        "≤ 0.02",
        f"{median / first:.3f} ({median:.2f} s vs {first:.1f} s; model loaded: {'yes' if loaded else 'no'})",
        median / first <= 0.02 and not loaded,
    )


# -- target 5: search latency --------------------------------------------------------------
def bench_search(work: Path, sizes: list[int]) -> None:
    print("search", flush=True)
    from kb import KnowledgeBase
    from kb.config import load_settings

    kb = KnowledgeBase(load_settings(home=str(work / "startup")))
    kb.search("warm up", 5)
    warm = []
    for i in range(50):
        t = time.perf_counter()
        kb.search(f"which flowers give bees nectar in month {i}", 5)  # new query: encoder + index
        warm.append((time.perf_counter() - t) * 1000)
    RAW["search_warm_sample_ms"] = warm
    row("5. warm kb.search, new query, sample KB (encode + index)", "-", f"p50 {statistics.median(warm):.1f} ms", None)
    results = []
    for n in sizes:
        _, proc = wall([sys.executable, str(HERE / "search_sweep.py"), str(n), str(work / f"sweep-{n}")], env_for(work))
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        shutil.rmtree(work / f"sweep-{n}", ignore_errors=True)
        goal = "p50 ≤ 10 ms" if n == 100_000 else "report"
        row(
            f"5. index search at {n:,} chunks",
            goal,
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms (index alone, k=10: p50 {result['index_p50_ms']} ms, "
            f"recall@10 {result['recall_at_10_dist']} by distance, {result['recall_at_10']} by ids, at ef_search "
            f"{result['ef_search']}), RSS {result['max_rss_mb']} MB, "
            f"disk {result['disk_mb']} MB, build {result['insert_s']} s",
            result["p50_ms"] <= 10 if n == 100_000 else None,
        )
    RAW["search_sweep"] = results
    if len(results) > 1:
        first, last = results[0], results[-1]
        row(
            f"5. growth {first['chunks']:,} → {last['chunks']:,} chunks",
            "report",
            f"p50 x{last['p50_ms'] / first['p50_ms']:.2f}, p99 x{last['p99_ms'] / first['p99_ms']:.2f} "
            f"for x{last['chunks'] / first['chunks']:.0f} chunks",
            None,
        )


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def machine() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    lines = info.splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    import torch

    # /proc/cpuinfo shows the hardware; under benchmarks/avx2/emulate.py the runtimes see
    # less, and the emulation is named so that no figure is mistaken for another CPU's.
    return (
        f"{cpu}, {os.cpu_count()} cores; CPU flags: "
        + " ".join(f"{f}{'+' if f in flags else '-'}" for f in CPU_FLAGS)
        + f"; emulation: {os.environ.get('KB_CPU_EMULATION', 'none')}; torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, one repetition (~2 minutes)")
    parser.add_argument("--sizes", help="chunk counts for the search sweep (default 10000,100000; quick 10000,30000)")
    parser.add_argument("--no-llamaindex", action="store_true", help="skip the LlamaIndex comparison")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in (args.sizes or ("10000,30000" if args.quick else "10000,100000")).split(",")]
    llamaindex = not args.no_llamaindex
    if llamaindex:
        try:
            import llama_index.core  # noqa: F401
        except ImportError as exc:
            raise SystemExit(
                "LlamaIndex is not installed: run `make bench` (it installs .[bench]) or pass --no-llamaindex"
            ) from exc
    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        work = Path(tmp)
        reps = 3 if args.quick else 5
        bench_startup(work, reps)
        bench_ingest(work, args.quick, llamaindex)
        if llamaindex:
            bench_llamaindex_notes(work, args.quick)
        bench_reingest(work, args.quick)
        bench_search(work, sizes)
    RAW["machine"] = machine()
    RAW["minutes"] = round((time.perf_counter() - started) / 60, 1)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n{'target':<{width}}  {'goal':<12}  {'met':<4}  measured")
    for target, goal, measured, met in ROWS:
        print(f"{target:<{width}}  {goal:<12}  {'-' if met is None else 'yes' if met else 'NO':<4}  {measured}")
    print(f"\n{'quick' if args.quick else 'full'} run, {RAW['minutes']} min")
    if args.json:
        args.json.write_text(json.dumps(RAW, indent=1))


if __name__ == "__main__":
    main()
