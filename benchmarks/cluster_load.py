"""Load test of a kb cluster: search throughput and latency through HAProxy with one and with
two `kb serve` instances, directly against one instance as the reference, and one instance
SIGKILLed under load while ingest jobs are queued, in one run.

    python benchmarks/cluster_load.py [--requests 1000] [--clients 8,32] [--json FILE] [--logs DIR]
    python benchmarks/cluster_load.py --quick    # the hash embedder: checks the run, no figures

One cluster (scripts/cluster.py) in a temporary directory: redis-server, chroma run, two
`kb serve`, one `kb worker` and HAProxy, all on 127.0.0.1, with the real embedding model. The
prose corpus (half of it, as benchmarks/load.py uses) is ingested once, as a job posted
through the balancer. "1 instance" is the same balancer with serve-2's weight set to 0 over
HAProxy's stats socket, so no request reaches it (it stays up, idle); "2 instances" sets it
back to 1. "direct" sends to serve-1's own port, without the balancer. Each configuration is
measured in two interleaved rounds, after a warm-up through the balancer that reaches both
instances. The load generator is benchmarks/loadgen.py's, as benchmarks/serve.py's (raw
HTTP/1.1 on kept-alive connections, light on CPU; every search a query not seen before).

The kill test runs searches through the balancer with both instances, posts ingest jobs
before and around the kill, SIGKILLs serve-1 by its pid file, polls the stats socket until
HAProxy marks serve-1 DOWN, and keeps the load on for a few seconds more. It reports failed
searches (non-200 or transport errors) before and after the drop, and the state every
accepted job reaches. Every process shares this machine's cores, which bounds every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import notes_corpus, prose_corpus  # noqa: E402
from benchmarks.cpu import cpu_flags, cpu_line  # noqa: E402
from benchmarks.load import Queries, _searches, _show, _words  # noqa: E402
from benchmarks.loadgen import measure  # noqa: E402

SCRIPT = ROOT / "scripts" / "cluster.py"
CONFIGS = ("direct to serve-1", "balancer, 1 instance", "balancer, 2 instances")
ROUNDS = 2
JOB_FOLDERS = 6
NOTES_PER_JOB = 8
KILL_AFTER_S = 3.0  # of load before the SIGKILL
AFTER_DROP_S = 5.0  # of load after HAProxy marks the instance DOWN
KILL_DEADLINE_S = 60.0
JOBS_DEADLINE_S = 300.0


@dataclass
class Cluster:
    base: Path
    url: str
    ports: dict[str, int]

    def pid(self, name: str) -> int:
        return int((self.base / "run" / f"{name}.pid").read_text().strip())

    def admin(self, command: str) -> str:
        """One command on HAProxy's stats socket (level admin); the answer as text."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.base / "run" / "haproxy.sock"))
            s.sendall(command.encode() + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode(errors="replace")

    def status(self, server: str) -> str:
        """UP, DOWN, "UP 1/2" while going down, MAINT: the balancer's view of one server."""
        for line in self.admin("show stat").splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[:2] == ["kb", server]:
                return fields[17]
        raise RuntimeError(f"{server} is not in the balancer's stats")

    def weight(self, server: str, weight: int) -> None:
        answer = self.admin(f"set weight kb/{server} {weight}").strip()
        if answer:
            raise RuntimeError(f"set weight kb/{server} {weight}: {answer}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) of each running cluster process, and of this one (the load
        generator), so far."""
        tick = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid_file in sorted((self.base / "run").glob("*.pid")):
            try:
                stat = Path(f"/proc/{pid_file.read_text().strip()}/stat").read_text()
            except OSError:
                continue  # killed
            fields = stat.rsplit(")", 1)[1].split()
            used[pid_file.stem] = (int(fields[11]) + int(fields[12])) / tick
        mine = os.times()
        used["load generator"] = mine.user + mine.system
        return used

    def served_by(self, count: int = 6) -> list[str]:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            return [http.get("/readyz").headers.get("x-kb-instance", "?") for _ in range(count)]


def start_cluster(base: Path, env: dict[str, str]) -> Cluster:
    started = subprocess.run([sys.executable, str(SCRIPT), "start", "--dir", str(base)], env=env,
                             capture_output=True, text=True, timeout=400)  # fmt: skip
    print(started.stdout, end="", flush=True)
    if started.returncode != 0:
        raise SystemExit(f"the cluster did not start:\n{started.stderr}")
    ports = {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+pid \d+\s+127\.0\.0\.1:(\d+)", started.stdout, re.M)}
    return Cluster(base, started.stdout.splitlines()[-1].strip(), ports)


def stop_cluster(base: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "stop", "--dir", str(base)], capture_output=True, timeout=300)


def wait_jobs(url: str, ids: list[str], timeout: float) -> dict[str, dict]:
    """Each job as last seen, once every one is done or failed, or at the timeout."""
    deadline = time.monotonic() + timeout
    last: dict[str, dict] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        while True:
            for job_id in ids:
                if last.get(job_id, {}).get("state") not in ("done", "failed"):
                    res = http.get(f"/v1/jobs/{job_id}")
                    last[job_id] = res.json() if res.status_code == 200 else {"state": f"HTTP {res.status_code}"}
            if all(j.get("state") in ("done", "failed") for j in last.values()) or time.monotonic() > deadline:
                return last
            time.sleep(0.5)


def ingest_corpus(cluster: Cluster, corpus: Path) -> dict[str, Any]:
    started = time.perf_counter()
    res = httpx.post(f"{cluster.url}/v1/ingest", json={"paths": [str(corpus)]}, timeout=30)
    if res.status_code != 202:
        raise SystemExit(f"POST /v1/ingest: {res.status_code} {res.text}")
    job = wait_jobs(cluster.url, [res.json()["job_id"]], 900)[res.json()["job_id"]]
    if job.get("state") != "done":
        raise SystemExit(f"the corpus ingest ended {job.get('state')}: {job.get('error')}")
    report = job.get("report") or {}
    print(f"corpus ingested by the worker in {time.perf_counter() - started:.1f} s: {report}", flush=True)
    return {"seconds": round(time.perf_counter() - started, 1), "report": report}


def measure_all(cluster: Cluster, queries: Queries, clients: list[int], total: int) -> dict[str, dict]:
    searches = _searches(queries)
    direct = f"http://127.0.0.1:{cluster.ports['serve-1']}"
    # Warm-up through the balancer, both instances: model, keyword index, page cache, threads.
    warm = asyncio.run(measure(cluster.url, 8, 400, searches))
    print(f"warm-up: {warm['requests']} searches, {warm['errors']} errors, {warm['throughput']} req/s", flush=True)
    results: dict[str, dict] = {}
    for round_ in range(1, ROUNDS + 1):
        for config in CONFIGS:
            cluster.weight("serve-2", 0 if config == "balancer, 1 instance" else 1)
            seen = set(cluster.served_by())
            want = {"serve-1"} if config == "balancer, 1 instance" else {"serve-1", "serve-2"}
            if seen != want:
                raise SystemExit(f"{config}: the balancer sent requests to {seen}, not {want}")
            url = direct if config.startswith("direct") else cluster.url
            for n in clients:
                before = cluster.cpu_seconds()
                r = asyncio.run(measure(url, n, total, searches))
                used = {k: v - before[k] for k, v in cluster.cpu_seconds().items() if k in before}
                cpu = {k: round(v * 1000 / r["requests"], 2) for k, v in used.items()}
                r |= {"config": config, "round": round_, "cpu_ms_per_search": cpu,
                      "cores_busy": round(sum(used.values()) / r["seconds"], 2)}  # fmt: skip
                results[f"{config}, round {round_}, {n}"] = r
                _show("search", f"{config}, r{round_}", r)
                print(f"{'':36}cores busy {r['cores_busy']}, CPU ms per search: {cpu}", flush=True)
    cluster.weight("serve-2", 1)
    return results


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None  # None: a transport error
    instance: str
    error: str


async def _kill_run(cluster: Cluster, queries: Queries, clients: int, folders: list[Path]) -> dict[str, Any]:
    make = _searches(queries)
    outcomes: list[Outcome] = []
    posts: list[dict[str, Any]] = []
    marks: dict[str, float] = {}
    victim = cluster.pid("serve-1")
    begun = time.monotonic()

    def finished() -> bool:
        now = time.monotonic()
        return now - begun > KILL_DEADLINE_S or ("down" in marks and now - marks["down"] > AFTER_DROP_S)

    async def client(http: httpx.AsyncClient) -> None:
        while not finished():
            method, path, body = make()
            started = time.monotonic()
            try:
                res = await http.request(method, path, json=body)
                outcomes.append(Outcome(started, time.monotonic(), res.status_code,
                                        res.headers.get("x-kb-instance", ""), ""))  # fmt: skip
            except httpx.HTTPError as exc:
                outcomes.append(Outcome(started, time.monotonic(), None, "", f"{type(exc).__name__}: {exc}"))

    async def killer() -> None:
        await asyncio.sleep(KILL_AFTER_S)
        os.kill(victim, signal.SIGKILL)
        marks["kill"] = time.monotonic()
        while time.monotonic() - marks["kill"] < KILL_DEADLINE_S:
            status = await asyncio.to_thread(cluster.status, "serve-1")
            if status.startswith("DOWN"):
                marks["down"] = time.monotonic()
                return
            await asyncio.sleep(0.05)

    async def poster(http: httpx.AsyncClient) -> None:
        # Two jobs before the load, the rest spread over the seconds around the kill.
        offsets = [0.0, 0.0] + [KILL_AFTER_S - 0.5 + 0.35 * i for i in range(len(folders) - 2)]
        for folder, offset in zip(folders, offsets):
            await asyncio.sleep(max(0.0, begun + offset - time.monotonic()))
            sent = time.monotonic()
            entry: dict[str, Any] = {"folder": folder.name, "sent_s": round(sent - begun, 2)}
            try:
                res = await http.post("/v1/ingest", json={"paths": [str(folder)]})
                entry |= {"status": res.status_code, "instance": res.headers.get("x-kb-instance", "")}
                if res.status_code == 202:
                    entry["job_id"] = res.json()["job_id"]
            except httpx.HTTPError as exc:
                entry |= {"status": None, "error": f"{type(exc).__name__}: {exc}"}
            posts.append(entry)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with (
        httpx.AsyncClient(base_url=cluster.url, timeout=60, limits=limits) as http,
        httpx.AsyncClient(base_url=cluster.url, timeout=60) as jobs_http,
    ):
        await asyncio.gather(killer(), poster(jobs_http), *(client(http) for _ in range(clients)))
    return {"outcomes": outcomes, "posts": posts, "begun": begun, **marks}


def kill_test(cluster: Cluster, queries: Queries, clients: int, folders: list[Path]) -> dict[str, Any]:
    if {cluster.status(s) for s in ("serve-1", "serve-2")} != {"UP"}:
        raise SystemExit("kill test: both instances must be UP first")
    run = asyncio.run(_kill_run(cluster, queries, clients, folders))
    outcomes: list[Outcome] = run["outcomes"]
    kill, down = run.get("kill"), run.get("down")
    if kill is None:
        raise SystemExit("kill test: serve-1 was not killed")

    def failed(o: Outcome) -> bool:
        return o.status != 200

    before_kill = [o for o in outcomes if o.started < kill]
    window = [o for o in outcomes if kill <= o.started < (down or float("inf"))]
    after = [o for o in outcomes if down is not None and o.started >= down]
    in_flight = [o for o in before_kill if o.ended >= kill]
    failures = [o for o in outcomes if failed(o)]
    kinds: dict[str, int] = {}
    for o in failures:
        key = o.error.split(":")[0] if o.status is None else f"HTTP {o.status}"
        kinds[key] = kinds.get(key, 0) + 1
    served_by_victim_after_kill = sum(o.instance == "serve-1" and o.started >= kill for o in outcomes)

    accepted = [p["job_id"] for p in run["posts"] if "job_id" in p]
    jobs = wait_jobs(cluster.url, accepted, JOBS_DEADLINE_S)
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        listed = http.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]
    ours = {p["folder"] for p in run["posts"]}
    queued_for_folders = [j for j in listed if any(Path(p).name in ours for p in j.get("params", {}).get("paths", []))]

    latencies = sorted(o.ended - o.started for o in after if not failed(o))
    states: dict[str, int] = {}
    for job in jobs.values():
        states[job.get("state", "?")] = states.get(job.get("state", "?"), 0) + 1
    summary = {
        "clients": clients,
        "requests": len(outcomes),
        "before_kill_throughput": round(len(before_kill) / (kill - run["begun"]), 1),
        "kill_after_s": round(kill - run["begun"], 2),
        "kill_to_down_s": round(down - kill, 2) if down is not None else None,
        "failed_total": len(failures),
        "failed_started_before_kill": sum(map(failed, before_kill)),
        "in_flight_at_kill": len(in_flight),
        "failed_in_flight_at_kill": sum(map(failed, in_flight)),
        "requests_kill_to_down": len(window),
        "failed_kill_to_down": sum(map(failed, window)),
        "requests_after_down": len(after),
        "failed_after_down": sum(map(failed, after)),
        "failure_kinds": kinds,
        "failures": [
            {"started_s": round(o.started - kill, 3), "status": o.status, "error": o.error[:200]} for o in failures[:20]
        ],
        "served_by_serve_1_after_kill": served_by_victim_after_kill,
        "after_down_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "after_down_throughput": round(len(after) / (max(o.ended for o in after) - down), 1)
        if after and down
        else None,
        "serve_2_status": cluster.status("serve-2"),
        "jobs_posted": len(run["posts"]),
        "jobs_accepted": len(accepted),
        "job_posts": [p | {"sent_s_from_kill": round(run["begun"] + p["sent_s"] - kill, 2)} for p in run["posts"]],
        "jobs_final_states": states,
        "jobs_listed_for_these_folders": len(queued_for_folders),
        "job_errors": [j.get("error") for j in jobs.values() if j.get("state") != "done"],
    }
    return summary


# An httplog line: ... frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes ... termination state ...
HTTPLOG = re.compile(r" \S+ \S+/\S+ -?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+ (-?\d+) ")


# ... actconn/feconn/beconn/srv_conn/retries: "+1" is one retry on another server (redispatch).
REDISPATCHED = re.compile(r" \d+/\d+/\d+/\d+/\+\d+ \d+/\d+ \"(\S+ \S+)")


def balancer_log(base: Path) -> dict[str, Any]:
    """HAProxy's state changes of the servers, its log of every request not answered 200 or
    202, and how many requests it sent again to another server, by request line."""
    try:
        lines = (base / "logs" / "balancer.log").read_text(errors="replace").splitlines()
    except OSError:
        return {"changes": [], "failed": [], "redispatched": {}}
    redispatched: dict[str, int] = {}
    for line in lines:
        if m := REDISPATCHED.search(line):
            redispatched[m[1]] = redispatched.get(m[1], 0) + 1
    return {
        "changes": [line for line in lines if re.search(r"^Server kb/\S+ is (DOWN|UP)", line)],
        "failed": [line for line in lines if (m := HTTPLOG.search(line)) and m[1] not in ("200", "202")][:30],
        "redispatched": redispatched,
    }


def log_problems(base: Path) -> dict[str, int]:
    counts = {}
    for log in sorted((base / "logs").glob("*.log")):
        text = log.read_text(errors="replace")
        counts[log.stem] = text.count("Traceback") + len(re.findall(r"\bERROR\b", text))
    return counts


def print_table(results: dict[str, dict], kill: dict[str, Any]) -> None:
    print("\n| configuration | round | clients | searches | errors | req/s | p50 ms | p99 ms | cores busy "
          "| CPU ms per search: kb serve / HAProxy / chroma / redis / load generator |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in sorted(results.values(), key=lambda r: (CONFIGS.index(r["config"]), r["clients"], r["round"])):
        cpu = r["cpu_ms_per_search"]
        serve = sum(v for k, v in cpu.items() if k.startswith("serve-"))
        parts = " / ".join(f"{v:.2f}" for v in (serve, cpu.get("balancer", 0), cpu.get("chroma", 0),
                                                 cpu.get("redis", 0), cpu.get("load generator", 0)))  # fmt: skip
        print(f"| {r['config']} | {r['round']} | {r['clients']} | {r['requests']} | {r['errors']} | "
              f"{r['throughput']} | {r['p50_ms']} | {r['p99_ms']} | {r['cores_busy']} | {parts} |")  # fmt: skip
    print()
    for config in CONFIGS:
        for n in sorted({r["clients"] for r in results.values()}):
            rows = [r for r in results.values() if r["config"] == config and r["clients"] == n]
            mean = statistics.fmean(r["throughput"] for r in rows)
            print(f"{config:24} {n:>2} clients: mean {mean:6.1f} req/s over {len(rows)} rounds")
    print("\nkill test (SIGKILL serve-1 under load, 2 instances):")
    for key in ("clients", "requests", "before_kill_throughput", "kill_after_s", "kill_to_down_s", "failed_total", "in_flight_at_kill",
                "failed_in_flight_at_kill", "requests_kill_to_down", "failed_kill_to_down", "requests_after_down",
                "failed_after_down", "failure_kinds", "served_by_serve_1_after_kill", "after_down_throughput",
                "after_down_p50_ms", "serve_2_status", "jobs_posted", "jobs_accepted", "jobs_final_states",
                "jobs_listed_for_these_folders", "job_errors"):  # fmt: skip
        print(f"  {key}: {kill[key]}")
    for p in kill["job_posts"]:
        print(f"  job post {p['folder']}: {p['sent_s_from_kill']:+.2f} s from the kill -> "
              f"{p.get('status')} {p.get('instance', '')} {p.get('error', '')}")  # fmt: skip
    for f in kill["failures"]:
        print(f"  failed search started {f['started_s']:+.3f} s from the kill: {f['status']} {f['error']}")


def run(
    work: Path, total: int, clients: list[int], kill_clients: int, quick: bool, logs: Path | None
) -> dict[str, Any]:
    corpus = work / "corpus"
    prose_corpus(corpus, every=8 if quick else 2)
    words = _words(corpus)
    notes = work / "jobs" / "all"
    notes_corpus(notes, JOB_FOLDERS * NOTES_PER_JOB)
    folders: list[Path] = []
    files = sorted(notes.iterdir())
    for i in range(JOB_FOLDERS):
        folder = work / "jobs" / f"batch-{i + 1}"
        folder.mkdir()
        for note in files[i * NOTES_PER_JOB : (i + 1) * NOTES_PER_JOB]:
            note.rename(folder / note.name)
        folders.append(folder)
    env = dict(os.environ, KB_SERVE_ROOTS=str(work), TOKENIZERS_PARALLELISM="false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.pop("KB_SERVE_TOKENS", None)  # the balancer's /readyz checks and these requests carry no token
    if quick:
        env["KB_MODEL"] = "hash"  # the model seam: checks the run's machinery, measures nothing

    base = work / "cluster"
    began = time.perf_counter()
    cluster = start_cluster(base, env)
    out: dict[str, Any] = {"cluster_start_s": round(time.perf_counter() - began, 1)}
    try:
        out["ingest"] = ingest_corpus(cluster, corpus)
        # One sequence for the whole run, so no search repeats a query an instance has cached.
        queries = Queries(words)
        out["search"] = measure_all(cluster, queries, clients, total)
        out["kill"] = kill_test(cluster, queries, kill_clients, folders)
        out["balancer_log"] = balancer_log(base)
        out["log_problems"] = log_problems(base)
    except BaseException:
        print(f"failed; logs kept in {base / 'logs'}", file=sys.stderr)
        stop_cluster(base)
        raise
    stop_cluster(base)
    if logs is not None:
        shutil.copytree(base / "logs", logs, dirs_exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="searches per measurement")
    parser.add_argument("--clients", default="8,32", help="concurrent clients, comma-separated")
    parser.add_argument("--kill-clients", type=int, default=8, help="concurrent clients in the kill test")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--logs", type=Path, help="copy the cluster's logs (HAProxy's, each instance's) here")
    parser.add_argument("--quick", action="store_true",
                        help="the hash embedder instead of the model, an eighth of the corpus: a check, not figures")  # fmt: skip
    args = parser.parse_args(argv)
    flags = cpu_flags()
    print(f"{cpu_line()}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)  # fmt: skip
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="kb-cluster-load-"))
    ok = False
    try:
        out = run(
            work, args.requests, [int(c) for c in args.clients.split(",")], args.kill_clients, args.quick, args.logs
        )
        ok = True
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
    out |= {"quick": args.quick, "cpu_flags": flags, "minutes": round((time.perf_counter() - began) / 60, 1),
            "date": time.strftime("%Y-%m-%d", time.gmtime())}  # fmt: skip
    print_table(out["search"], out["kill"])
    log = out["balancer_log"]
    print("\nbalancer log: state changes, requests not answered 200/202, requests sent again to another server:")
    for line in log["changes"] + log["failed"]:
        print(f"  {line}")
    print(f"  sent again after a refused connection or an empty answer: {log['redispatched']}")
    print(f"Traceback/ERROR lines per log: {out['log_problems']}")
    print(f"cluster start {out['cluster_start_s']} s, corpus ingest {out['ingest']['seconds']} s, "
          f"whole run {out['minutes']} min")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=lambda o: asdict(o)))


if __name__ == "__main__":
    main()
