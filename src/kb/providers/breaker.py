"""Circuit breakers whose state lives in SQLite under the KB home.

Every `kb ask` is a new process, so a breaker held in memory would never open. The board
is shared by all kb processes; transitions run in IMMEDIATE transactions so two
processes cannot both claim the half-open probe.

    closed --(failure_threshold consecutive failures)--> open
    open --(cooldown_s elapsed; one caller claims the probe)--> half_open
    half_open --success--> closed        half_open --failure--> open
"""

from __future__ import annotations

import time
from pathlib import Path

from kb.errors import CircuitOpen, ProviderError
from kb.providers.base import Completion, CompletionRequest
from kb.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS breakers (
    provider TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT 'closed',
    failures INTEGER NOT NULL DEFAULT 0,
    opened_at REAL NOT NULL DEFAULT 0,
    probe_at REAL NOT NULL DEFAULT 0
);
"""


class BreakerBoard:
    def __init__(self, path: Path, failure_threshold: int, cooldown_s: float) -> None:
        self._db = connect(path, _SCHEMA)
        self.threshold = failure_threshold
        self.cooldown = cooldown_s

    def _row(self, provider: str) -> tuple[str, int, float, float]:
        self._db.execute("INSERT OR IGNORE INTO breakers(provider) VALUES (?)", (provider,))
        return self._db.execute(
            "SELECT state, failures, opened_at, probe_at FROM breakers WHERE provider = ?", (provider,)
        ).fetchone()

    def _set(self, provider: str, state: str, failures: int, opened_at: float, probe_at: float) -> None:
        self._db.execute(
            "UPDATE breakers SET state = ?, failures = ?, opened_at = ?, probe_at = ? WHERE provider = ?",
            (state, failures, opened_at, probe_at, provider),
        )

    def acquire(self, provider: str) -> None:
        """Return if a call may go ahead; raise CircuitOpen if it must be skipped."""
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            state, failures, opened_at, probe_at = self._row(provider)
            if state == "open":
                wait = opened_at + self.cooldown - now
                if wait > 0:
                    raise CircuitOpen(f"{provider}: circuit open, next probe in {wait:.0f}s", provider=provider)
                self._set(provider, "half_open", failures, opened_at, now)
            elif state == "half_open":
                if now - probe_at < self.cooldown:
                    raise CircuitOpen(f"{provider}: circuit half-open, another process is probing", provider=provider)
                self._set(provider, "half_open", failures, opened_at, now)  # the last probe never reported
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def success(self, provider: str) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._row(provider)
        self._set(provider, "closed", 0, 0.0, 0.0)
        self._db.execute("COMMIT")

    def failure(self, provider: str) -> None:
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        state, failures, opened_at, _ = self._row(provider)
        failures += 1
        if state == "half_open" or failures >= self.threshold:
            self._set(provider, "open", failures, now, 0.0)
        else:
            self._set(provider, state, failures, opened_at, 0.0)
        self._db.execute("COMMIT")

    def states(self) -> dict[str, dict]:
        rows = self._db.execute("SELECT provider, state, failures, opened_at FROM breakers ORDER BY provider")
        return {p: {"state": s, "failures": f, "opened_at": o or None} for p, s, f, o in rows}


class Breaker:
    def __init__(self, inner, board: BreakerBoard) -> None:
        self.inner = inner
        self.name = inner.name
        self.board = board

    def complete(self, request: CompletionRequest) -> Completion:
        self.board.acquire(self.name)
        try:
            completion = self.inner.complete(request)
        except ProviderError:
            self.board.failure(self.name)
            raise
        self.board.success(self.name)
        return completion
