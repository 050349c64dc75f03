"""The metrics store: one row per ask, search or ingest, one per provider attempt."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kb.providers.base import Attempt
from kb.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    kb TEXT NOT NULL,
    retrieve_ms REAL, generate_ms REAL, total_ms REAL,
    provider TEXT, model TEXT,
    input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
    cached INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    top1 REAL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS attempts (
    ts REAL NOT NULL, provider TEXT NOT NULL, outcome TEXT NOT NULL, error TEXT, latency_ms REAL
);
CREATE INDEX IF NOT EXISTS attempts_ts ON attempts(ts);
"""


@dataclass
class Event:
    kind: str  # ask | search | ingest
    kb: str
    total_ms: float
    retrieve_ms: float | None = None
    generate_ms: float | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    error: str | None = None
    top1: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    ts: float = field(default_factory=time.time)


class MetricsStore:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, _SCHEMA)

    def record(self, event: Event) -> None:
        row = asdict(event)
        attempts = row.pop("attempts")
        row["cached"] = int(row["cached"])
        cols = ", ".join(row)
        self._db.execute("BEGIN")
        self._db.execute(f"INSERT INTO events({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        self._db.executemany(
            "INSERT INTO attempts VALUES (?, ?, ?, ?, ?)",
            [(event.ts, a["provider"], a["outcome"], a["error"], a["latency_ms"]) for a in attempts],
        )
        self._db.execute("COMMIT")

    def events(self, since: float | None = None) -> list[dict]:
        cur = self._db.execute("SELECT * FROM events WHERE ts >= ? ORDER BY ts", (since or 0,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur]

    def attempts(self, since: float | None = None) -> list[dict]:
        cur = self._db.execute("SELECT provider, outcome, error, latency_ms FROM attempts WHERE ts >= ?", (since or 0,))
        return [dict(zip(("provider", "outcome", "error", "latency_ms"), row)) for row in cur]

    def top1_before(self, ts: float) -> list[float]:
        rows = self._db.execute("SELECT top1 FROM events WHERE ts < ? AND top1 IS NOT NULL ORDER BY ts", (ts,))
        return [r[0] for r in rows]
