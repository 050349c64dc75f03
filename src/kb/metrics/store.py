"""The metrics store: one row per ask, search or ingest, one per provider attempt."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kb.providers.base import Attempt
from kb.sqlite import Database, Migration

_SCHEMA_1 = """
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

# Schema 2: attempts carry their KB (and the message a user saw), so `kb stats` can cover one
# KB. Attempts recorded before it get the KB of the event they were written with (same ts).
_SCHEMA_2 = """
ALTER TABLE attempts ADD COLUMN kb TEXT;
ALTER TABLE attempts ADD COLUMN message TEXT;
UPDATE attempts SET kb = (SELECT e.kb FROM events e WHERE e.ts = attempts.ts LIMIT 1);
UPDATE attempts SET kb = '' WHERE kb IS NULL;
CREATE INDEX IF NOT EXISTS events_kb_ts ON events(kb, ts);
CREATE INDEX IF NOT EXISTS attempts_kb_ts ON attempts(kb, ts);
"""

# Schema 3: an ingest records the chunks it embedded, so `kb ingest --dry-run` can estimate
# the time of the next one from this machine's past throughput.
_SCHEMA_3 = "ALTER TABLE events ADD COLUMN chunks INTEGER;"

MIGRATIONS: list[Migration] = [_SCHEMA_1, _SCHEMA_2, _SCHEMA_3]
# Ingests that embedded fewer chunks are mostly start-up (model load, Chroma open).
MIN_CHUNKS_FOR_RATE = 100


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
    chunks: int | None = None  # ingest: chunks embedded
    attempts: list[Attempt] = field(default_factory=list)
    ts: float = field(default_factory=time.time)


class MetricsStore:
    """Every KB under one home writes here; reads take a KB name, or None for all of them."""

    def __init__(self, path: Path, readonly: bool = False, untouched: bool = False) -> None:
        self._db = Database(path, MIGRATIONS, readonly=readonly, untouched=untouched)

    @property
    def readonly(self) -> bool:
        return self._db.readonly

    def close(self) -> None:
        self._db.close()

    def record(self, event: Event) -> None:
        row = asdict(event)
        attempts = row.pop("attempts")
        row["cached"] = int(row["cached"])
        cols = ", ".join(row)
        with self._db.transaction() as conn:
            conn.execute(f"INSERT INTO events({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
            conn.executemany(
                "INSERT INTO attempts(ts, kb, provider, outcome, error, message, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (event.ts, event.kb, a["provider"], a["outcome"], a["error"], a.get("message"), a["latency_ms"])
                    for a in attempts
                ],
            )

    @staticmethod
    def _where(kb: str | None, since: float | None, before: float | None = None) -> tuple[str, list]:
        clauses: list[str] = ["ts >= ?"]
        params: list[Any] = [since or 0.0]
        if before is not None:
            clauses, params = ["ts < ?"], [before]
        if kb is not None:
            clauses.append("kb = ?")
            params.append(kb)
        return " AND ".join(clauses), params

    def events(self, kb: str | None, since: float | None = None) -> list[dict]:
        where, params = self._where(kb, since)
        return [dict(r) for r in self._db.execute(f"SELECT * FROM events WHERE {where} ORDER BY ts", params)]

    def attempts(self, kb: str | None, since: float | None = None) -> list[dict]:
        where, params = self._where(kb, since)
        cur = self._db.execute(
            f"SELECT provider, outcome, error, message, latency_ms FROM attempts WHERE {where}", params
        )
        return [dict(r) for r in cur]

    def top1_before(self, kb: str | None, ts: float) -> list[float]:
        where, params = self._where(kb, None, before=ts)
        rows = self._db.execute(f"SELECT top1 FROM events WHERE {where} AND top1 IS NOT NULL ORDER BY ts", params)
        return [r["top1"] for r in rows]

    def ingest_rate(self, model: str, last: int = 20) -> tuple[float, int] | None:
        """Chunks per second of the `last` ingests with `model` that embedded enough chunks to
        measure (end to end: reading, embedding and storing), and how many ingests that is."""
        rows = self._db.execute(
            "SELECT chunks, total_ms FROM events WHERE kind = 'ingest' AND model = ? "
            "AND chunks >= ? AND total_ms > 0 ORDER BY ts DESC LIMIT ?",
            (model, MIN_CHUNKS_FOR_RATE, last),
        ).fetchall()
        if not rows:
            return None
        return sum(r["chunks"] for r in rows) / (sum(r["total_ms"] for r in rows) / 1000), len(rows)
