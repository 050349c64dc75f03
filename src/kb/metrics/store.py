"""The metrics store: one row per ask, search or ingest, one per provider attempt.

Embedded in `metrics.db` under the KB home, or one sorted set on Redis (`state.url`) that
every instance writes to; both answer the same calls with the same rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from kb import state
from kb.providers.base import Attempt
from kb.sqlite import Database, Migration

if TYPE_CHECKING:
    import redis

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


class Metrics(Protocol):
    """What `kb stats`, the ingest estimate and Home.record use; MetricsStore and
    RedisMetricsStore both are one."""

    @property
    def readonly(self) -> bool: ...
    def close(self) -> None: ...
    def record(self, event: Event) -> None: ...
    def record_many(self, events: Sequence[Event]) -> None: ...
    def events(self, kb: str | None, since: float | None = None) -> list[dict]: ...
    def attempts(self, kb: str | None, since: float | None = None) -> list[dict]: ...
    def top1_before(self, kb: str | None, ts: float) -> list[float]: ...
    def ingest_rate(self, model: str, last: int = 20) -> tuple[float, int] | None: ...


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
        self.record_many([event])

    def record_many(self, events: Sequence[Event]) -> None:
        """Appends events in one transaction."""
        with self._db.transaction() as conn:
            for event in events:
                row = asdict(event)
                attempts = row.pop("attempts")
                row["cached"] = int(row["cached"])
                cols = ", ".join(row)
                conn.execute(f"INSERT INTO events({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
                conn.executemany(
                    "INSERT INTO attempts(ts, kb, provider, outcome, error, message, latency_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (event.ts, event.kb, a["provider"], a["outcome"], a["error"], a.get("message"),
                         a["latency_ms"])
                        for a in attempts
                    ],
                )  # fmt: skip

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


# The columns of an events row, in the order the SQLite store returns them.
EVENT_COLUMNS = (
    "id",
    "ts",
    "kind",
    "kb",
    "retrieve_ms",
    "generate_ms",
    "total_ms",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cached",
    "error",
    "top1",
    "chunks",
)
ATTEMPT_COLUMNS = ("provider", "outcome", "error", "message", "latency_ms")

# One event is one member of the sorted set: its JSON, attempts inside, with an id from a
# counter (so two events alike in every field stay two members, and ties in ts keep the
# order they were recorded in). Adding it and trimming the oldest is one script: atomic.
_RECORD = """
local id = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[1], '{"id":' .. string.format('%d', id) .. ',' .. string.sub(ARGV[2], 2))
local beyond = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if beyond > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, beyond - 1)
end
return id
"""


class RedisMetricsStore:
    """The metrics of every instance in one Redis sorted set, scored by the event's ts.

    It keeps the newest MAX_EVENTS events and drops the oldest beyond them: unlike a file per
    machine, it lives in the memory every instance shares (an event is ~0.5 KB, so ~100 MB at
    most), and `kb stats` reads the whole window it covers. 200,000 events is weeks of a busy
    service, more than the recent/baseline drift comparison needs.
    """

    MAX_EVENTS = 200_000
    _PAGE = 1000

    def __init__(self, client: redis.Redis, max_events: int = MAX_EVENTS) -> None:
        self._client = client
        self._key = state.key("metrics", "events")
        self._seq = state.key("metrics", "seq")
        self._max = max_events
        self._record = client.register_script(_RECORD)

    @property
    def readonly(self) -> bool:
        return False

    def close(self) -> None:
        state.release(self._client)

    def record(self, event: Event) -> None:
        self.record_many([event])

    def record_many(self, events: Sequence[Event]) -> None:
        """Appends events in one round trip (a pipeline of the recording script)."""
        with state.translated(self._client, "recording metrics events"):
            pipe = self._client.pipeline(transaction=False)
            for event in events:
                row = asdict(event)
                row["cached"] = int(row["cached"])
                row["attempts"] = [{c: a.get(c) for c in ATTEMPT_COLUMNS} for a in row["attempts"]]
                self._record(keys=[self._key, self._seq], args=[repr(float(event.ts)), json.dumps(row), self._max],
                             client=pipe)  # fmt: skip
            pipe.execute()

    def _range(self, low: float | str, high: float | str, kb: str | None) -> list[dict]:
        with state.translated(self._client, "reading the metrics"):
            members = cast(list[bytes], self._client.zrangebyscore(self._key, low, high))
        rows = [json.loads(m) for m in members]
        rows = [r for r in rows if kb is None or r["kb"] == kb]
        rows.sort(key=lambda r: (r["ts"], r["id"]))
        return rows

    @staticmethod
    def _event_row(r: dict) -> dict:
        return {c: r.get(c) for c in EVENT_COLUMNS}

    def events(self, kb: str | None, since: float | None = None) -> list[dict]:
        return [self._event_row(r) for r in self._range(since or 0.0, "+inf", kb)]

    def attempts(self, kb: str | None, since: float | None = None) -> list[dict]:
        return [
            {c: a.get(c) for c in ATTEMPT_COLUMNS} for r in self._range(since or 0.0, "+inf", kb) for a in r["attempts"]
        ]

    def top1_before(self, kb: str | None, ts: float) -> list[float]:
        return [r["top1"] for r in self._range("-inf", f"({ts!r}", kb) if r["top1"] is not None]

    def ingest_rate(self, model: str, last: int = 20) -> tuple[float, int] | None:
        """As MetricsStore.ingest_rate: the newest events first, a page at a time, until `last`
        ingests with `model` are found."""
        found: list[dict] = []
        start = 0
        while len(found) < last:
            with state.translated(self._client, "reading the metrics"):
                members = cast(list[bytes], self._client.zrevrange(self._key, start, start + self._PAGE - 1))
            if not members:
                break
            for m in members:
                r = json.loads(m)
                if (
                    r["kind"] == "ingest"
                    and r["model"] == model
                    and (r["chunks"] or 0) >= MIN_CHUNKS_FOR_RATE
                    and (r["total_ms"] or 0) > 0
                ):
                    found.append(r)
                    if len(found) == last:
                        break
            start += self._PAGE
        if not found:
            return None
        return sum(r["chunks"] for r in found) / (sum(r["total_ms"] for r in found) / 1000), len(found)


if TYPE_CHECKING:  # mypy holds both stores to the protocol
    _STORES: tuple[type[Metrics], ...] = (MetricsStore, RedisMetricsStore)
