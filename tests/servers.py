"""Real servers for the scale-out tests: Debian's `redis-server` and `chroma run` (the chromadb
package's own server), each started on 127.0.0.1 on a free port and stopped by pid.

Tests that need them skip with the reason when the binary is missing (the Makefile installs
both; a developer's machine may not have redis-server)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"server on port {port} did not listen within {timeout}s")


class _Process:
    """One server process; `stop` and `start` again keep its port and data (restart tests)."""

    port: int
    proc: subprocess.Popen | None = None

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{name}.log"
        self.port = free_port()

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> _Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        _wait_port(self.port, self.proc, self.log, timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class RedisServer(_Process):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, "redis")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (make install-dev installs it)")
        # Persistence on, so a restart keeps what the instances shared (as a real deployment would).
        return [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
                "--save", "", "--appendonly", "yes", "--daemonize", "no"]  # fmt: skip


class ChromaServer(_Process):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, "chroma")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        chroma = Path(sys.executable).parent / "chroma"
        return [str(chroma), "run", "--path", str(self.workdir / "data"), "--host", "127.0.0.1",
                "--port", str(self.port)]  # fmt: skip


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    server = ChromaServer(tmp_path_factory.mktemp("chroma")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """A clean database on the session's redis-server for each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url
