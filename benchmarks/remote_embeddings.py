"""Remote embeddings against the local encoder: chunks/s of one kb embedding through another
kb's `kb serve` (`[embedding] kind = "openai"`, its /v1/embeddings) and of the local ingest
encoder, on the same chunks, on this machine.

    python benchmarks/remote_embeddings.py [--chunks 1024] [--reps 3] [--concurrency 1,2,4] [--json FILE]

The server is a real `kb serve` on 127.0.0.1 with the packaged model; batches of more than
a few texts go to its ingest encoder. Both ends share this machine's cores, so the remote
figure is a floor for a separate embedding machine: the client's HTTP and JSON work and
the server's encoder compete here. Runs are interleaved (local, remote..., local, ...) so
that drift from other work on the machine hits them alike; the median is printed with the
range. Vectors are compared too (cosine, remote to local), to show they are the same model.
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
sys.path.insert(0, str(HERE.parent))

from corpus import prose_corpus  # noqa: E402
from run import _chunk_texts  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_flags() -> list[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return [f for f in FLAGS if f in have]
    return []


def start_server(home: Path, port: int) -> subprocess.Popen:
    log = (home.parent / "serve.log").open("wb")
    env = {**os.environ, "KB_HOME": str(home)}
    cmd = [sys.executable, "-m", "kb", "serve", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kb serve exited: {(home.parent / 'serve.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("kb serve was not ready in 120 s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rate(embed, texts: list[str]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = embed(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--every", type=int, default=1, help="every n-th document of the prose corpus")
    parser.add_argument("--concurrency", default="1,2,4", help="max_concurrency values to run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from kb import KnowledgeBase
    from kb.config import load_settings

    root = Path(tempfile.mkdtemp(prefix="kb-remote-bench-"))
    corpus = root / "corpus"
    prose_corpus(corpus, every=args.every)
    local_settings = load_settings(home=str(root / "local"))
    texts = _chunk_texts(local_settings, corpus)[: args.chunks]
    local = KnowledgeBase(local_settings).home.embedder
    local.embed(texts[:32])  # load and compile before timing

    port = free_port()
    server = start_server(root / "server", port)
    try:
        remotes = {}
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            home = root / f"client-{concurrency}"
            home.mkdir()
            (home / "config.toml").write_text(
                f'[embedding]\nkind = "openai"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
                f'model = "all-MiniLM-L6-v2"\nbatch_size = {args.batch_size}\nmax_concurrency = {concurrency}\n'
            )
            remotes[concurrency] = KnowledgeBase(load_settings(home=str(home))).home.embedder
        next(iter(remotes.values())).embed(texts[: args.batch_size])  # the server loads its ingest encoder

        runs: dict[str, list[float]] = {"local": [], **{f"remote c={c}": [] for c in remotes}}
        cosine: dict[str, float] = {}
        for _ in range(args.reps):
            speed, reference = rate(local.embed, texts)
            runs["local"].append(speed)
            for c, remote in remotes.items():
                speed, vectors = rate(remote.embed, texts)
                runs[f"remote c={c}"].append(speed)
                cosine[f"remote c={c}"] = float(np.min(np.sum(vectors * reference, axis=1)))
    finally:
        server.terminate()
        server.wait(30)

    result = {
        "cpu_flags": cpu_flags(),
        "cores": len(os.sched_getaffinity(0)),
        "chunks": len(texts),
        "batch_size": args.batch_size,
        "chunks_per_s": {
            k: {"median": round(statistics.median(v), 1), "min": round(min(v), 1), "max": round(max(v), 1)}
            for k, v in runs.items()
        },
        "min_cosine_to_local": {k: round(v, 4) for k, v in cosine.items()},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
