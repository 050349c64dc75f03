"""make cluster (scripts/cluster.py): the real redis-server, chroma run, two kb serve, kb worker
and HAProxy on 127.0.0.1, in a temporary directory. A killed instance leaves the rotation
through the balancer's /readyz health check; the stop command ends every process by its pid."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.py"
NAMES = ("redis", "chroma", "serve-1", "serve-2", "worker", "balancer")
PROGRAMS = {"redis": "redis-server", "chroma": "chroma", "serve-1": "serve", "serve-2": "serve",
            "worker": "worker", "balancer": "haproxy"}  # fmt: skip

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") or os.access("/usr/bin/redis-server", os.X_OK))
    or not (shutil.which("haproxy") or os.access("/usr/sbin/haproxy", os.X_OK)),
    reason="redis-server or haproxy is not installed (make install-dev installs them)",
)


def cluster(command: str, base: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), command, "--dir", str(base)], capture_output=True,
                          text=True, timeout=180, env={**os.environ, **(env or {})})  # fmt: skip


def running(pid: int) -> bool:
    """Alive and not a zombie (the processes' starter has exited; init reaps them in its time)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def server_status(base: Path, server: str) -> str:
    """The balancer's view of one server (UP, DOWN, "UP 1/2" while going down), from its stats socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(base / "run" / "haproxy.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    for line in data.decode().splitlines():
        fields = line.split(",")
        if len(fields) > 17 and fields[:2] == ["kb", server]:
            return fields[17]
    raise AssertionError(f"{server} not in the balancer's stats:\n{data.decode()}")


def test_cluster_balances_drops_a_killed_instance_within_5s_and_stops(tmp_path):
    base = tmp_path / "cluster"
    began = time.monotonic()
    started = cluster("start", base, env={"KB_SERVE_TOKENS": "s3cret"})
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        startup = time.monotonic() - began
        url = started.stdout.splitlines()[-1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), started.stdout
        pids = {name: int((base / "run" / f"{name}.pid").read_text()) for name in NAMES}
        for name, pid in pids.items():
            assert running(pid), f"{name} (pid {pid}) is not running"
            assert PROGRAMS[name] in cmdline(pid), (name, cmdline(pid))

        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/readyz").status_code == 200
            # The tokens reached both instances (round robin: two requests, one each) ...
            assert [http.get("/v1/kbs").status_code for _ in range(2)] == [401, 401]
            token = {"authorization": "Bearer s3cret"}
            assert [http.get("/v1/kbs", headers=token).status_code for _ in range(2)] == [200, 200]
            # ... and so did sample_corpus/ as an ingest root.
            sample = [http.post("/v1/ingest", json={"paths": [str(ROOT / "sample_corpus")]}, headers=token)
                      for _ in range(2)]  # fmt: skip
            assert [r.status_code for r in sample] == [202, 202], [r.text for r in sample]
            assert {r.headers["x-kb-instance"] for r in sample} == {"serve-1", "serve-2"}
            outside = [http.post("/v1/ingest", json={"paths": [str(ROOT)]}, headers=token) for _ in range(2)]
            assert [r.status_code for r in outside] == [403, 403]
            served = [http.get("/readyz").headers["x-kb-instance"] for _ in range(4)]
            assert sorted(served) == ["serve-1", "serve-1", "serve-2", "serve-2"], served  # round robin

            os.kill(pids["serve-1"], signal.SIGKILL)
            killed = time.monotonic()
            answers = []
            while not server_status(base, "serve-1").startswith("DOWN"):
                assert time.monotonic() - killed < 5, f"serve-1 still {server_status(base, 'serve-1')} after 5 s"
                answers.append(http.get("/readyz"))  # refused connections are sent on to serve-2
                time.sleep(0.05)
            dropped = time.monotonic() - killed
            answers += [http.get("/readyz") for _ in range(20)]
        assert [a.status_code for a in answers] == [200] * len(answers)
        assert {a.headers["x-kb-instance"] for a in answers[-20:]} == {"serve-2"}
        assert server_status(base, "serve-2") == "UP"
    finally:
        stopped = cluster("stop", base)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert [name for name, pid in pids.items() if running(pid)] == []
    assert list((base / "run").glob("*.pid")) == []
    again = cluster("stop", base)
    assert again.returncode == 0 and "nothing running" in again.stdout
    print(f"started in {startup:.1f} s; serve-1 out of the rotation {dropped:.1f} s after SIGKILL")


def test_cluster_that_fails_to_start_stops_what_it_started_and_shows_the_log(tmp_path):
    base = tmp_path / "cluster"
    # top_k = 0 is a configuration error: the kb processes exit at start, after redis and chroma run.
    failed = cluster("start", base, env={"KB_TOP_K": "0"})
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"(serve-\d|worker) failed to start: exited with status 2", failed.stderr), failed.stderr
    assert "top_k: must be at least 1" in failed.stderr
    pids = [int(pid) for pid in re.findall(r"^\S+\s+pid (\d+)", failed.stdout, re.MULTILINE)]
    assert len(pids) >= 3, failed.stdout  # redis, chroma and at least one kb process were started
    assert [pid for pid in pids if running(pid)] == []
    assert list((base / "run").glob("*.pid")) == []


def test_stop_with_nothing_running_is_harmless(tmp_path):
    stopped = cluster("stop", tmp_path / "never-started")
    assert stopped.returncode == 0, stopped.stderr
    assert "nothing running" in stopped.stdout


def test_deploy_haproxy_cfg_has_the_settings_make_cluster_uses_and_is_valid(tmp_path):
    spec = importlib.util.spec_from_file_location("cluster_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script
    spec.loader.exec_module(script)
    local = [line.strip() for line in script.haproxy_config(8080, (8001, 8002)).splitlines()]
    deployed = [line.strip() for line in (ROOT / "deploy" / "haproxy.cfg").read_text().splitlines()]
    shared = [line for line in local if line and not line.startswith(("bind ", "server ", "stats socket"))]
    remaining = iter(deployed)
    missing = [line for line in shared if line not in remaining]  # in the same order
    assert missing == []
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    check = subprocess.run([haproxy, "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
