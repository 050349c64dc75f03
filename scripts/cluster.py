"""A local kb cluster on 127.0.0.1: redis-server, a Chroma server, two `kb serve` instances,
one `kb worker` and HAProxy in front of the instances (docs/deploy.md has the same topology
for real machines).

    .venv/bin/python scripts/cluster.py start [--dir .kb-cluster] [--port 8765]
    .venv/bin/python scripts/cluster.py stop  [--dir .kb-cluster]

`start` runs every process in the background, writes its pid to DIR/run/NAME.pid and its
output to DIR/logs/NAME.log, waits until the balancer answers /readyz with 200 and prints the
balancer's URL as its last line. If a process does not come up, everything started so far is
stopped again and its log's tail is printed. `stop` sends SIGTERM to each pid, SIGKILL after
--timeout, and removes the pid files; with nothing running it does nothing.

The base directory is --dir, else $KB_CLUSTER_DIR, else .kb-cluster in the repository. Ports
are free ones unless given (--port or $KB_CLUSTER_PORT for the balancer). KB_SERVE_TOKENS and
the rest of the environment pass through to the kb processes; each instance encodes with half
the cores (OMP_NUM_THREADS) unless that variable is set.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_corpus"
# Stopped in this order: the balancer first, so no request reaches an instance that is going away.
NAMES = ("balancer", "serve-1", "serve-2", "worker", "chroma", "redis")
# A pid file can outlive its process and the pid be reused; a process is only signalled when
# its command line still shows what was started.
MARKERS = {"redis": "redis-server", "chroma": "chroma", "serve-1": "serve", "serve-2": "serve",
           "worker": "worker", "balancer": "haproxy"}  # fmt: skip
STOP_TIMEOUT_S = 35.0  # kb serve gives in-flight requests 30 s after SIGTERM


class StartError(Exception):
    def __init__(self, name: str, why: str, log: Path | None) -> None:
        super().__init__(f"{name} {why}")
        self.name, self.why, self.log = name, why, log


def binary(name: str, fallback: str) -> str:
    """PATH first; then Debian's location (/usr/sbin is not on a normal user's PATH)."""
    found = shutil.which(name) or (fallback if os.access(fallback, os.X_OK) else None)
    if found is None:
        raise StartError(name, "is not installed (make install-dev installs redis-server and haproxy)", None)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def alive(pid: int) -> bool:
    """Running and not a zombie: a process whose starter has exited may wait a while to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return not Path("/proc/self").exists()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ours(pid: int, name: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust the pid file
    return MARKERS[name] in cmdline


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Cluster:
    base: Path
    balancer_port: int
    redis_port: int
    chroma_port: int
    serve_ports: tuple[int, int]
    timeout: float
    started: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.balancer_port}"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def kb_env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        roots = [str(SAMPLE)] + [r for r in env.get("KB_SERVE_ROOTS", "").split(":") if r]
        env.update(
            KB_HOME=str(self.base / "home" / name),
            KB_STORE_URL=f"http://127.0.0.1:{self.chroma_port}",
            KB_STATE_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            KB_SERVE_ROOTS=":".join(roots),
            # Uploads are read by whichever worker takes the job: one folder for all.
            KB_SERVE_UPLOADS_DIR=str(self.base / "uploads"),
        )
        if name.startswith("serve-") and not env.get("OMP_NUM_THREADS"):
            from kb.concurrency import process_share

            env["OMP_NUM_THREADS"] = str(process_share(2))  # the two instances share the cores
        return env

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with (self.logs / f"{name}.log").open("wb") as out:
            # A session of its own: the processes outlive this script and a Ctrl-C in its terminal.
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env, cwd=self.base, start_new_session=True)  # fmt: skip
        self.started[name] = proc
        self.pid_file(name).write_text(f"{proc.pid}\n")
        print(f"{name:<9} pid {proc.pid:<8} {self.where(name):<24} {self.logs / f'{name}.log'}", flush=True)
        return proc

    def where(self, name: str) -> str:
        ports = {"redis": self.redis_port, "chroma": self.chroma_port, "serve-1": self.serve_ports[0],
                 "serve-2": self.serve_ports[1], "balancer": self.balancer_port}  # fmt: skip
        return f"127.0.0.1:{ports[name]}" if name in ports else ""

    def wait(self, name: str, ready: Callable[[], bool], timeout: float | None = None) -> None:
        import httpx

        proc = self.started[name]
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StartError(name, f"exited with status {proc.returncode}", self.logs / f"{name}.log")
            try:
                if ready():
                    return
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.2)
        raise StartError(name, f"was not ready within {timeout or self.timeout:.0f} s", self.logs / f"{name}.log")

    def start(self) -> None:
        for sub in (self.run, self.logs, self.base / "redis", self.base / "chroma", self.base / "home"):
            sub.mkdir(parents=True, exist_ok=True)
        redis_server = binary("redis-server", "/usr/bin/redis-server")
        haproxy = binary("haproxy", "/usr/sbin/haproxy")
        config = self.base / "haproxy.cfg"
        config.write_text(haproxy_config(self.balancer_port, self.serve_ports))
        check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True, cwd=self.base)
        if check.returncode != 0:
            raise StartError("balancer", f"config {config} is invalid:\n{check.stdout}{check.stderr}", None)

        # noeviction: the queue and the jobs' state live in this Redis too (docs/deploy.md).
        self.spawn("redis", [redis_server, "--bind", "127.0.0.1", "--port", str(self.redis_port),
                             "--dir", str(self.base / "redis"), "--appendonly", "yes", "--save", "",
                             "--maxmemory-policy", "noeviction", "--daemonize", "no"])  # fmt: skip
        self.wait("redis", lambda: redis_ping(self.redis_port), 20)

        chroma = Path(sys.executable).parent / "chroma"
        chroma_env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
        self.spawn("chroma", [str(chroma), "run", "--path", str(self.base / "chroma"), "--host", "127.0.0.1",
                              "--port", str(self.chroma_port)], chroma_env)  # fmt: skip
        chroma_url = f"http://127.0.0.1:{self.chroma_port}/api/v2/heartbeat"
        self.wait("chroma", partial(http_ok, chroma_url), 60)

        kb = [sys.executable, "-m", "kb"]
        for name, port in zip(("serve-1", "serve-2"), self.serve_ports):
            self.spawn(name, [*kb, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                       self.kb_env(name))  # fmt: skip
        self.spawn("worker", [*kb, "worker"], self.kb_env("worker"))
        for name, port in zip(("serve-1", "serve-2"), self.serve_ports):
            self.wait(name, partial(http_ok, f"http://127.0.0.1:{port}/readyz"))
        self.wait("worker", lambda: True)

        self.spawn("balancer", [haproxy, "-db", "-f", str(config)])
        self.wait("balancer", partial(http_ok, f"{self.url}/readyz"), 30)

    def stop_started(self) -> None:
        stop(self.base, self.timeout, quiet=True)


def http_ok(url: str) -> bool:
    import httpx  # here, so that `stop` runs on any python3

    return httpx.get(url, timeout=2).status_code == 200


def redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def haproxy_config(port: int, serve_ports: tuple[int, int]) -> str:
    servers = "\n".join(f"    server serve-{i} 127.0.0.1:{p} check" for i, p in enumerate(serve_ports, 1))
    return HAPROXY_CONFIG.format(bind=f"127.0.0.1:{port}", servers=servers, socket="unix@run/haproxy.sock")


# The same configuration as deploy/haproxy.cfg, with local addresses and a stats socket.
HAPROXY_CONFIG = """\
global
    log stdout format raw local0 info
    stats socket {socket} mode 600 level admin

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option forwardfor
    # A new connection to an instance for each request: a reused idle one to an instance that
    # just died fails the request, a new one is refused and the request goes to another.
    option http-server-close
    timeout connect 2s
    timeout check 2s
    timeout client 130s
    timeout server 130s
    # A request an instance refused, or closed without a byte of answer (killed, say), is sent
    # again to another instance; not requests that change something (see the backend).
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response
    # HAProxy can send a request again only if it still holds all of it: buffering the body
    # (a search's is a few hundred bytes) lets the request an instance died on go to another.
    option http-buffer-request

frontend kb
    bind {bind}
    default_backend kb

backend kb
    balance roundrobin
    # /readyz is 503 while the model loads or the store or queue is unreachable, and open
    # without a token; two failed checks a second apart take an instance out of the rotation.
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host kb
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
    # An ingest, a job retry or a removal the dead instance may have carried out is not repeated.
    acl changes method DELETE
    acl changes path /v1/ingest
    acl changes path_end /retry
    http-request disable-l7-retry if changes
    http-response set-header X-Kb-Instance %s
{servers}
"""


def stop(base: Path, timeout: float, quiet: bool = False) -> int:
    """SIGTERM to each running process, SIGKILL to those still there after `timeout`."""
    run = base / "run"
    running: list[tuple[str, int]] = []
    for name in NAMES:
        path = run / f"{name}.pid"
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if alive(pid) and ours(pid, name):
            running.append((name, pid))
        else:
            path.unlink(missing_ok=True)
    if not running:
        if not quiet:
            print(f"nothing running in {base}")
        return 0
    # In stages, so instances finish their requests while the store and Redis are still there.
    for stage in (("balancer",), ("serve-1", "serve-2", "worker"), ("chroma", "redis")):
        group = [(n, p) for n, p in running if n in stage]
        for _, pid in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(alive(p) for _, p in group) and time.monotonic() < deadline:
            time.sleep(0.1)
        for name, pid in group:
            if alive(pid):
                print(f"{name} (pid {pid}) still running after {timeout:.0f} s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            (run / f"{name}.pid").unlink(missing_ok=True)
            if name == "balancer":
                (run / "haproxy.sock").unlink(missing_ok=True)  # haproxy leaves it behind
            if not quiet:
                print(f"stopped {name} (pid {pid})")
    return 0


def running_names(base: Path) -> list[str]:
    names = []
    for name in NAMES:
        try:
            pid = int((base / "run" / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if alive(pid) and ours(pid, name):
            names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("KB_CLUSTER_DIR") or ROOT / ".kb-cluster"),
                        help="base directory (default: $KB_CLUSTER_DIR, else .kb-cluster in the repository)")  # fmt: skip
    parser.add_argument("--port", type=int, default=int(os.environ.get("KB_CLUSTER_PORT") or 0),
                        help="the balancer's port (default: $KB_CLUSTER_PORT, else a free one)")  # fmt: skip
    parser.add_argument("--redis-port", type=int, default=0)
    parser.add_argument("--chroma-port", type=int, default=0)
    parser.add_argument("--serve-ports", type=int, nargs=2, default=(0, 0), metavar="PORT")
    parser.add_argument("--timeout", type=float, default=None,
                        help="start: seconds a process may take to be ready (120); stop: before SIGKILL (35)")  # fmt: skip
    args = parser.parse_args(argv)
    base = args.dir.resolve()

    if args.command == "stop":
        return stop(base, args.timeout or STOP_TIMEOUT_S)

    if names := running_names(base):
        print(f"a cluster already runs in {base} ({', '.join(names)}): make cluster-stop first", file=sys.stderr)
        return 1
    stop(base, STOP_TIMEOUT_S, quiet=True)  # stale pid files of a cluster that died
    given = {"balancer": args.port, "redis": args.redis_port, "chroma": args.chroma_port,
             "serve-1": args.serve_ports[0], "serve-2": args.serve_ports[1]}  # fmt: skip
    taken = [f"{name} port {port}" for name, port in given.items() if port and port_in_use(port)]
    if taken:
        print(f"in use on 127.0.0.1: {', '.join(taken)}", file=sys.stderr)
        return 1
    ports = {name: port or free_port() for name, port in given.items()}
    cluster = Cluster(base, ports["balancer"], ports["redis"], ports["chroma"], (ports["serve-1"], ports["serve-2"]),
                      args.timeout or 120.0)  # fmt: skip
    started = time.monotonic()
    try:
        cluster.start()
    except (StartError, KeyboardInterrupt) as exc:
        cluster.stop_started()
        if isinstance(exc, KeyboardInterrupt):
            print("interrupted: stopped what was started", file=sys.stderr)
            return 130
        print(f"\n{exc.name} failed to start: {exc.why}", file=sys.stderr)
        if exc.log is not None:
            print(f"--- last lines of {exc.log} ---\n{tail(exc.log)}", file=sys.stderr)
        print("stopped what was started", file=sys.stderr)
        return 1
    print(f"ready in {time.monotonic() - started:.1f} s; stop with: make cluster-stop")
    print(cluster.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
