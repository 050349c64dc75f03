"""Each shared-state seam on both of its backends: embedded (files under a KB home) and Redis.

`backend` is parametrized, so a test that takes it runs once per backend. Each call of a
factory opens a new instance on the same state, as another kb process (embedded) or another
machine with its own client (Redis) would: what one writes, the other must see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kb import state
from kb.cache import DiskCache, RedisCache
from kb.jobs.redis_store import RedisJobStore
from kb.jobs.store import SqliteJobStore
from kb.metrics.store import MetricsStore, RedisMetricsStore
from kb.providers.breaker import RedisBreakerBoard, SqliteBreakerBoard
from kb.tokens import RedisTokenStore, SqliteTokenStore


def together(work: Callable[..., Any], calls: list[tuple]) -> None:
    """Runs `work(*args)` for each args in `calls`, each on its own thread, released at the
    same moment (a barrier), and waits for all of them: instances racing for shared state."""
    start = threading.Barrier(len(calls))

    def run(*args: Any) -> None:
        start.wait()
        work(*args)

    threads = [threading.Thread(target=run, args=args) for args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class ManualClock:
    """A clock a test moves by hand, for cooldowns measured without waiting for them."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Backend:
    def __init__(self, name: str, home: Path, redis_url: str | None) -> None:
        self.name = name
        self.home = home
        self.redis_url = redis_url
        self._opened: list[Any] = []

    @property
    def redis(self) -> bool:
        return self.name == "redis"

    def _keep(self, adapter: Any) -> Any:
        self._opened.append(adapter)
        return adapter

    def client(self):
        assert self.redis_url is not None
        return state.connect(self.redis_url)

    def cache(self):
        if self.redis:
            return self._keep(RedisCache(self.client()))
        return self._keep(DiskCache(self.home / "cache", 64))

    def breakers(self, failure_threshold: int, cooldown_s: float, clock: ManualClock | None = None):
        if self.redis:
            return self._keep(RedisBreakerBoard(self.client(), failure_threshold, cooldown_s, clock))
        board = SqliteBreakerBoard(
            self.home / "breakers.db", failure_threshold, cooldown_s, *([clock] if clock else [])
        )
        return self._keep(board)

    def metrics(self, **options: Any):
        if self.redis:
            return self._keep(RedisMetricsStore(self.client(), **options))
        return self._keep(MetricsStore(self.home / "metrics.db"))

    def jobs(self):
        if self.redis:
            return self._keep(RedisJobStore(self.client()))
        return self._keep(SqliteJobStore(self.home / "jobs.db"))

    def tokens(self):
        if self.redis:
            return self._keep(RedisTokenStore(self.client()))
        return self._keep(SqliteTokenStore(self.home / "tokens.db"))

    def close(self) -> None:
        for adapter in self._opened:
            adapter.close()


@pytest.fixture(params=["embedded", "redis"])
def backend(request, tmp_path):
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    b = Backend(request.param, tmp_path / "state", redis_url)
    yield b
    b.close()


@pytest.fixture
def redis_backend(redis_url, tmp_path):
    """The Redis backend alone, for what only it has (a server that can go away)."""
    b = Backend("redis", tmp_path / "state", redis_url)
    yield b
    b.close()


@pytest.fixture
def redis_outage(redis_server):
    """Stops the session's redis-server for the test body; it is started again afterwards
    (with its data: the server persists, as a deployment would)."""

    class Outage:
        def stop(self) -> None:
            redis_server.stop()

        def start(self) -> None:
            if redis_server.proc is not None and redis_server.proc.poll() is not None:
                redis_server.start()

    outage = Outage()
    yield outage
    outage.start()
