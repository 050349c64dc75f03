"""Circuit breakers whose state outlives one `kb` process.

Every `kb ask` is a new process, so a breaker held in memory would never open: the board
that holds each provider's state is shared by all kb processes under one home (SQLite,
transitions in IMMEDIATE transactions so two processes cannot both claim the half-open
probe). The rules live in `_next`, once; boards only store state atomically. Instances on
several machines share one board on Redis (`state.url`), transitions in WATCH/MULTI.

    closed --(failure_threshold consecutive failures)--> open
    open --(cooldown_s elapsed; one caller claims the probe)--> half_open
    half_open --success--> closed        half_open --failure--> open
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from kb import state as shared
from kb.errors import CircuitOpen
from kb.providers.base import Completion, CompletionRequest
from kb.sqlite import Database

if TYPE_CHECKING:
    import redis
    from redis.client import Pipeline


@dataclass
class BreakerState:
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probe_at: float = 0.0


class BreakerBoard(Protocol):
    threshold: int
    cooldown: float

    def acquire(self, provider: str) -> None:
        """Return if a call may go ahead; raise CircuitOpen if it must be skipped."""

    def success(self, provider: str) -> None: ...
    def failure(self, provider: str) -> None: ...
    def states(self) -> dict[str, dict]: ...


def _next(s: BreakerState, event: str, provider: str, now: float, threshold: int, cooldown: float) -> BreakerState:
    """The state after `event` (acquire | success | failure); raises CircuitOpen to skip."""
    if event == "success":
        return BreakerState()
    if event == "failure":
        failures = s.failures + 1
        if s.state == "half_open" or failures >= threshold:
            return BreakerState("open", failures, now, 0.0)
        return BreakerState(s.state, failures, s.opened_at, 0.0)
    if s.state == "open":
        wait = s.opened_at + cooldown - now
        if wait > 0:
            raise CircuitOpen(f"{provider}: circuit open, next probe in {wait:.0f}s", provider=provider)
        return BreakerState("half_open", s.failures, s.opened_at, now)
    if s.state == "half_open":
        if now - s.probe_at < cooldown:
            raise CircuitOpen(f"{provider}: circuit half-open, another process is probing", provider=provider)
        return BreakerState("half_open", s.failures, s.opened_at, now)  # the last probe never reported
    return s


def _public(states: dict[str, BreakerState]) -> dict[str, dict]:
    return {p: {"state": s.state, "failures": s.failures, "opened_at": s.opened_at or None} for p, s in states.items()}


_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS breakers (
    provider TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT 'closed',
    failures INTEGER NOT NULL DEFAULT 0,
    opened_at REAL NOT NULL DEFAULT 0,
    probe_at REAL NOT NULL DEFAULT 0
);
"""


Clock = Callable[[], float]


class _Board:
    """The three calls a Breaker makes, as events for `_apply` (each board stores atomically).
    `clock` gives the time the cooldown is measured in (tests pass a clock they move)."""

    def _apply(self, provider: str, event: str) -> None:
        raise NotImplementedError

    def acquire(self, provider: str) -> None:
        self._apply(provider, "acquire")

    def success(self, provider: str) -> None:
        self._apply(provider, "success")

    def failure(self, provider: str) -> None:
        self._apply(provider, "failure")


class SqliteBreakerBoard(_Board):
    """The embedded board: one SQLite file under the KB home, shared by every kb process."""

    def __init__(self, path: Path, failure_threshold: int, cooldown_s: float, clock: Clock = time.time) -> None:
        self._db = Database(path, [_SCHEMA_1])
        self.threshold = failure_threshold
        self.cooldown = cooldown_s
        self._clock = clock

    def _apply(self, provider: str, event: str) -> None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT state, failures, opened_at, probe_at FROM breakers WHERE provider = ?", (provider,)
            ).fetchone()
            current = (
                BreakerState(row["state"], row["failures"], row["opened_at"], row["probe_at"])
                if row
                else BreakerState()
            )
            new = _next(current, event, provider, self._clock(), self.threshold, self.cooldown)
            if new != current or row is None:
                conn.execute(
                    "INSERT OR REPLACE INTO breakers(provider, state, failures, opened_at, probe_at) VALUES (?, ?, ?, ?, ?)",
                    (provider, *astuple(new)),
                )

    def states(self) -> dict[str, dict]:
        rows = self._db.execute("SELECT provider, state, failures, opened_at, probe_at FROM breakers ORDER BY provider")
        return _public(
            {r["provider"]: BreakerState(r["state"], r["failures"], r["opened_at"], r["probe_at"]) for r in rows}
        )

    def close(self) -> None:
        self._db.close()


class RedisBreakerBoard(_Board):
    """The shared board: one Redis hash, a field per provider, for every instance on every machine.

    A transition reads the provider's state under WATCH and writes it in MULTI/EXEC; when
    another instance changed the board in between, EXEC fails and the transition runs again
    on what that instance wrote, so two instances never both claim the half-open probe. Time
    is the Redis server's (unless a `clock` is given), so instances whose clocks disagree
    still agree on the cooldown.
    """

    def __init__(
        self, client: redis.Redis, failure_threshold: int, cooldown_s: float, clock: Clock | None = None
    ) -> None:
        self._client = client
        self._key = shared.key("breakers")
        self.threshold = failure_threshold
        self.cooldown = cooldown_s
        self._clock = clock

    @staticmethod
    def _decode(raw: bytes | str) -> BreakerState:
        state, failures, opened_at, probe_at = json.loads(raw)
        return BreakerState(state, int(failures), float(opened_at), float(probe_at))

    def _apply(self, provider: str, event: str) -> None:
        def transition(pipe: Pipeline) -> None:
            raw = pipe.hget(self._key, provider)  # immediate: the pipeline is watching
            current = self._decode(raw) if raw is not None else BreakerState()
            now = self._clock() if self._clock is not None else shared.seconds(pipe.time())
            new = _next(current, event, provider, now, self.threshold, self.cooldown)
            pipe.multi()
            if new != current or raw is None:
                pipe.hset(self._key, provider, json.dumps(astuple(new)))

        with shared.translated(self._client, f"updating the circuit breaker of {provider}"):
            self._client.transaction(transition, self._key)

    def states(self) -> dict[str, dict]:
        with shared.translated(self._client, "reading the circuit breakers"):
            raw = self._client.hgetall(self._key)
        decoded = {shared.text(p): self._decode(v) for p, v in raw.items()}
        return _public(dict(sorted(decoded.items())))

    def close(self) -> None:
        shared.release(self._client)


class MemoryBreakerBoard(_Board):
    """A board for one process, used when the KB home is read-only."""

    def __init__(self, failure_threshold: int, cooldown_s: float, clock: Clock = time.time) -> None:
        self.threshold = failure_threshold
        self.cooldown = cooldown_s
        self._clock = clock
        self._states: dict[str, BreakerState] = {}
        self._lock = threading.Lock()

    def _apply(self, provider: str, event: str) -> None:
        with self._lock:
            current = self._states.get(provider, BreakerState())
            self._states[provider] = _next(current, event, provider, self._clock(), self.threshold, self.cooldown)

    def states(self) -> dict[str, dict]:
        with self._lock:
            return _public(dict(sorted(self._states.items())))

    def close(self) -> None:
        pass


T = TypeVar("T")


def guarded(board: BreakerBoard, name: str, call: Callable[[], T]) -> T:
    """`call()` if the breaker of `name` lets it through, its outcome reported to the board:
    a provider's completion (`Breaker`), a batch of remote embeddings."""
    board.acquire(name)
    try:
        result = call()
    except Exception:  # any failure of the link counts, whatever type the provider raised
        board.failure(name)
        raise
    board.success(name)
    return result


class Breaker:
    def __init__(self, inner, board: BreakerBoard) -> None:
        self.inner = inner
        self.name = inner.name
        self.board = board

    def complete(self, request: CompletionRequest) -> Completion:
        return guarded(self.board, self.name, lambda: self.inner.complete(request))


if TYPE_CHECKING:  # mypy holds every board to the protocol
    _BOARDS: tuple[type[BreakerBoard], ...] = (SqliteBreakerBoard, RedisBreakerBoard, MemoryBreakerBoard)
