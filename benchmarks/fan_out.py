"""One ingest job shared by `kb worker` processes: one worker against two, one encoder
thread each, on the same folder of SciFact abstracts (or the prose corpus where that folder
is missing), and one worker with two encoder threads (what `kb ingest --workers 2` would
have to beat on this machine). The real packaged model; local mode (huey on SQLite, Chroma
under KB_HOME), or with --shared a redis-server and `chroma run` on 127.0.0.1.

    python benchmarks/fan_out.py [--docs 800] [--rounds 2] [--shared] [--json FILE]

Each configuration starts its workers on a fresh KB_HOME, waits until they are up, queues
one job and times it from the job's start to its end (the job record's own times: the
planning, every part, the removals). Configurations alternate round by round; the ratio
is of job seconds measured in this run. The workers' CPU time (user + system, every thread,
from /proc) over the job's seconds says how many cores each configuration kept busy: one
worker with one encoder thread still reads and chunks on a thread of its own and commits
through Chroma's, so it uses more than one core, and two workers cannot reach twice it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.corpus import prose_corpus  # noqa: E402
from benchmarks.cpu import cpu_line  # noqa: E402
from benchmarks.serve import _cpu_s  # noqa: E402
from tests.service.processes import Worker, wait_for  # noqa: E402

SCIFACT = HERE.parent.parent / "shared" / "eval-data" / "scifact-train"
CONFIGS = (("1 worker x 1 thread", 1, 1), ("2 workers x 1 thread", 2, 1), ("1 worker x 2 threads", 1, 2))


def _corpus(folder: Path, docs: int) -> None:
    folder.mkdir(parents=True)
    if (SCIFACT / "docs").is_dir():
        for path in sorted((SCIFACT / "docs").iterdir())[:docs]:
            shutil.copy(path, folder / path.name)
    else:
        prose_corpus(folder)


def _kb(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "kb", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, check=False, timeout=600)  # fmt: skip


def _job_store(home: Path, shared: dict[str, str]) -> Any:
    if shared:
        from kb import state
        from kb.jobs.redis_store import RedisJobStore

        return RedisJobStore(state.connect(shared["KB_STATE_URL"]))
    from kb.jobs.store import SqliteJobStore

    return SqliteJobStore(home / "jobs.db")


def _one(work: Path, label: str, workers: int, threads: int, corpus: Path, shared: dict[str, str]) -> dict[str, Any]:
    home = work / f"home-{time.time_ns()}"
    home.mkdir()
    env = {"KB_HOME": str(home), "KB_QUEUE_WORKERS": "1", "KB_EMBEDDING_THREADS": str(threads), **shared}
    if shared:
        env["KB_NAME"] = f"fan{time.time_ns()}"  # a fresh KB on the shared servers
    procs = [Worker(home, env, f"worker-{n}") for n in range(workers)]
    try:
        for proc in procs:
            wait_for(lambda p=proc: "Ctrl-C stops" in p.output(), 120, "a worker to start")
        cpu_before = sum(_cpu_s(p.pid) for p in procs)
        queued = _kb(env, "ingest", "--background", str(corpus), "--json")
        if queued.returncode != 0:
            raise SystemExit(f"queueing failed: {queued.stderr}")
        job_id = json.loads(queued.stdout)["id"]
        # Read in this process: a `kb jobs show` twice a second would take CPU from the workers.
        jobs = _job_store(home, shared)
        try:

            def finished() -> dict[str, Any] | None:
                job = jobs.get(job_id).to_json()
                return job if job["state"] in ("done", "failed") else None

            job = wait_for(finished, 3600, f"job {job_id}", every=0.2)
        finally:
            jobs.close()
        cpu_s = sum(_cpu_s(p.pid) for p in procs) - cpu_before
    finally:
        for proc in procs:
            proc.stop()
    if job["state"] != "done":
        raise SystemExit(f"{label}: the job failed: {job['error']}")
    report = job["report"]
    seconds = float(report["seconds"])
    return {"config": label, "workers": workers, "threads": threads, "seconds": seconds,
            "chunks": report["chunks_added"], "files": report["added"], "chunks_per_s": report["chunks_added"] / seconds,
            "parts": job["progress"].get("parts_total"), "job_workers": len(job["progress"].get("workers", [])),
            "worker_cpu_s": cpu_s, "cores_busy": cpu_s / seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shared", action="store_true", help="a redis-server and `chroma run` on 127.0.0.1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(cpu_line())
    work = Path(tempfile.mkdtemp(prefix="kb-fan-out-"))
    servers: list[Any] = []
    try:
        corpus = work / "corpus"
        _corpus(corpus, args.docs)
        shared: dict[str, str] = {}
        if args.shared:
            from tests.servers import ChromaServer, RedisServer

            redis, chroma = RedisServer(work / "redis").start(), ChromaServer(work / "chroma").start()
            servers = [redis, chroma]
            shared = {"KB_STATE_URL": redis.url, "KB_STORE_URL": chroma.url}
        print(f"{len(list(corpus.iterdir()))} files, {'shared (Redis + Chroma server)' if shared else 'local'} mode")
        results = []
        for round_ in range(1, args.rounds + 1):
            for label, workers, threads in CONFIGS:
                r = _one(work, label, workers, threads, corpus, shared)
                r["round"] = round_
                results.append(r)
                print(f"round {round_} {label}: {r['seconds']:.1f} s, {r['chunks']} chunks, "
                      f"{r['chunks_per_s']:.1f} chunks/s, {r['parts']} parts, run by {r['job_workers']} worker(s), "
                      f"workers' CPU {r['worker_cpu_s']:.1f} s ({r['cores_busy']:.2f} cores busy)",
                      flush=True)  # fmt: skip
        for round_ in range(1, args.rounds + 1):
            rows = {r["config"]: r for r in results if r["round"] == round_}
            one, two, threads2 = (rows[c[0]]["seconds"] for c in CONFIGS)
            print(f"round {round_}: 2 workers {one / two:.2f}x one worker (goal >= 1.7); "
                  f"1 worker x 2 threads {one / threads2:.2f}x; 2 workers {threads2 / two:.2f}x of that")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu_line(), "results": results}, indent=1))
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
