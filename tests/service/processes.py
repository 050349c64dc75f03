"""Real kb processes for the service tests: `kb serve` (uvicorn) and `kb worker`, started on
127.0.0.1 with free ports and stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KbProcess:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "kb", *args], env={**os.environ, **env},
                                     stdout=self._out, stderr=subprocess.STDOUT)  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return self.proc.returncode


class Server(KbProcess):
    def __init__(self, home: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {"KB_HOME": str(home), **(env or {})}
        super().__init__(["serve", "--port", str(self.port), "--log-level", "warning", *(args or [])], full,
                         home.parent / f"serve-{self.port}.log")  # fmt: skip

    def wait_ready(self, timeout: float = 60, token: str | None = None) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kb serve exited ({self.proc.returncode}):\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"kb serve was not ready within {timeout}s:\n{self.output()[-3000:]}")

    def client(self, token: str | None = None, timeout: float = 60) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


class Worker(KbProcess):
    def __init__(
        self, home: Path, env: dict[str, str] | None = None, name: str = "worker", debug: bool = False
    ) -> None:
        args = ["--debug", "worker"] if debug else ["worker"]
        super().__init__(args, {"KB_HOME": str(home), **(env or {})}, home.parent / f"{name}.log")


def wait_for(predicate, timeout: float, what: str, every: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
