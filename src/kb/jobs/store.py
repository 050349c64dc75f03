"""The job records: what a background job was asked to do, where it stands, what it did.

The queue (huey) only carries job ids from producers to workers; this store is the source
of truth for a job's state, so `kb jobs` and GET /v1/jobs never depend on what is still in
the queue. A worker claims a job by taking its lease, and renews the lease while it runs;
a job whose lease ran out (its worker died) can be claimed again by another worker. The
store is `jobs.db` under the KB home, or Redis (`state.url`) shared by instances on several
machines; both keep the same records with the same guarantees.

    queued --claim--> running --> done | failed
       ^                 |  (lease expired: claimable again)
       +---- retry ------+
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from kb import state as shared
from kb.errors import Conflict, KbNotFound
from kb.sqlite import Database, Migration

if TYPE_CHECKING:
    import redis

STATES = ("queued", "running", "done", "failed")

_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kb TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    runs INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    progress TEXT NOT NULL DEFAULT '{}',
    report TEXT,
    error TEXT,
    deliveries TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, lease_until);
"""

MIGRATIONS: list[Migration] = [_SCHEMA_1]


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


@dataclass
class Job:
    id: str
    kb: str
    kind: str
    state: str
    params: dict
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    runs: int = 0
    worker: str | None = None
    lease_until: float | None = None
    progress: dict = field(default_factory=dict)
    report: dict | None = None
    error: str | None = None
    deliveries: list[dict] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The job as `kb jobs --json`, GET /v1/jobs/{id} and webhook bodies show it."""
        out = asdict(self)
        for key in ("created_at", "started_at", "finished_at"):
            out[key] = _iso(out[key])
        out.pop("lease_until")
        return out


def _job(row: Any) -> Job:
    return Job(
        id=row["id"],
        kb=row["kb"],
        kind=row["kind"],
        state=row["state"],
        params=json.loads(row["params"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        runs=row["runs"],
        worker=row["worker"],
        lease_until=row["lease_until"],
        progress=json.loads(row["progress"]),
        report=json.loads(row["report"]) if row["report"] else None,
        error=row["error"],
        deliveries=json.loads(row["deliveries"]),
    )


class JobStore(Protocol):
    """What the runner, the CLI and the service use; SqliteJobStore and RedisJobStore both are one."""

    def create(self, kb: str, kind: str, params: dict) -> Job: ...
    def get(self, job_id: str) -> Job: ...
    def recent(self, kb: str | None = None, state: str | None = None, limit: int = 100) -> list[Job]: ...
    def claim(self, job_id: str, worker: str, lease_s: float) -> Job | None: ...
    def renew(self, job_id: str, worker: str, lease_s: float) -> bool: ...
    def progress(self, job_id: str, worker: str, progress: dict) -> None: ...
    def finish(self, job_id: str, worker: str, state: str, report: dict | None, error: str | None) -> bool: ...
    def requeue(self, job_id: str) -> Job: ...
    def expired(self) -> list[str]: ...
    def add_delivery(self, job_id: str, delivery: dict) -> None: ...
    def close(self) -> None: ...


class SqliteJobStore:
    """The embedded job store: `jobs.db` under the KB home."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    def create(self, kb: str, kind: str, params: dict) -> Job:
        job = Job(id=f"job_{uuid.uuid4().hex[:20]}", kb=kb, kind=kind, state="queued", params=params,
                  created_at=time.time())  # fmt: skip
        self._db.execute(
            "INSERT INTO jobs(id, kb, kind, state, params, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (job.id, kb, kind, job.state, json.dumps(params), job.created_at),
        )
        return job

    def get(self, job_id: str) -> Job:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KbNotFound(f"there is no job {job_id!r}; `kb jobs` lists the jobs")
        return _job(row)

    def recent(self, kb: str | None = None, state: str | None = None, limit: int = 100) -> list[Job]:
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if kb is not None:
            clauses.append("kb = ?")
            params.append(kb)
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY created_at DESC LIMIT ?"
        return [_job(r) for r in self._db.execute(sql, (*params, limit))]

    def claim(self, job_id: str, worker: str, lease_s: float) -> Job | None:
        """Takes the job for `worker` if it is queued or its lease ran out; None if another
        worker holds it or it is finished."""
        now = time.time()
        with self._db.transaction() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            claimable = row["state"] == "queued" or (row["state"] == "running" and (row["lease_until"] or 0) < now)
            if not claimable:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'running', worker = ?, lease_until = ?, runs = runs + 1, "
                "started_at = coalesce(started_at, ?), error = NULL WHERE id = ?",
                (worker, now + lease_s, now, job_id),
            )
        return self.get(job_id)

    def renew(self, job_id: str, worker: str, lease_s: float) -> bool:
        """Extends the lease; False if the job is no longer this worker's."""
        cur = self._db.execute(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'running'",
            (time.time() + lease_s, job_id, worker),
        )
        return cur.rowcount == 1

    def progress(self, job_id: str, worker: str, progress: dict) -> None:
        self._db.execute(
            "UPDATE jobs SET progress = ? WHERE id = ? AND worker = ? AND state = 'running'",
            (json.dumps(progress), job_id, worker),
        )

    def finish(self, job_id: str, worker: str, state: str, report: dict | None, error: str | None) -> bool:
        """Records the outcome; False if the job was taken over meanwhile (the lease ran out)."""
        cur = self._db.execute(
            "UPDATE jobs SET state = ?, report = ?, error = ?, finished_at = ?, lease_until = NULL "
            "WHERE id = ? AND worker = ? AND state = 'running'",
            (state, json.dumps(report) if report is not None else None, error, time.time(), job_id, worker),
        )
        return cur.rowcount == 1

    def requeue(self, job_id: str) -> Job:
        """`kb jobs retry`: a finished job runs again (a running one cannot be retried)."""
        job = self.get(job_id)
        if job.state in ("queued", "running"):
            raise Conflict(f"job {job_id} is {job.state}; only a done or failed job can be retried")
        self._db.execute(
            "UPDATE jobs SET state = 'queued', finished_at = NULL, report = NULL, error = NULL, progress = '{}' "
            "WHERE id = ?",
            (job_id,),
        )
        return self.get(job_id)

    def expired(self) -> list[str]:
        """Running jobs whose lease ran out: their worker stopped."""
        rows = self._db.execute(
            "SELECT id FROM jobs WHERE state = 'running' AND lease_until < ?", (time.time(),)
        ).fetchall()
        return [r["id"] for r in rows]

    def add_delivery(self, job_id: str, delivery: dict) -> None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT deliveries FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            deliveries = json.loads(row["deliveries"]) + [delivery]
            conn.execute("UPDATE jobs SET deliveries = ? WHERE id = ?", (json.dumps(deliveries), job_id))


# -- the shared store on Redis --------------------------------------------------------------
# A job is a hash of its fields (absent = NULL), all text: numbers as the server wrote them,
# params/progress/report/deliveries as JSON. Two sorted sets index the jobs: by created_at
# (`recent`) and, for running jobs only, by lease_until (`expired`). Every change that the
# SQLite store makes in one statement or transaction is one Lua script here, atomic on the
# server; times are the Redis server's clock, which every worker shares, so a worker whose
# own clock runs ahead cannot take a job whose lease is still live.

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function stamp(x) return string.format('%.6f', x) end
"""

_CREATE = (
    _NOW
    + """
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'kb', ARGV[2], 'kind', ARGV[3], 'state', 'queued', 'params', ARGV[4],
           'created_at', stamp(now), 'runs', '0', 'progress', '{}', 'deliveries', '[]')
redis.call('ZADD', KEYS[2], stamp(now), ARGV[1])
return stamp(now)
"""
)

_CLAIM = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local state = redis.call('HGET', KEYS[1], 'state')
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
if not (state == 'queued' or (state == 'running' and lease < now)) then return false end
local until_ = stamp(now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[2], 'lease_until', until_)
redis.call('HINCRBY', KEYS[1], 'runs', 1)
redis.call('HSETNX', KEYS[1], 'started_at', stamp(now))
redis.call('HDEL', KEYS[1], 'error')
redis.call('ZADD', KEYS[2], until_, ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""
)

# The three writes a worker makes only while it holds the job (`holds` checks it).
_HOLDS = """
local function holds()
    return redis.call('HGET', KEYS[1], 'state') == 'running' and redis.call('HGET', KEYS[1], 'worker') == ARGV[2]
end
"""

_RENEW = (
    _NOW
    + _HOLDS
    + """
if not holds() then return 0 end
local until_ = stamp(now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'lease_until', until_)
redis.call('ZADD', KEYS[2], until_, ARGV[1])
return 1
"""
)

_PROGRESS = (
    _HOLDS
    + """
if not holds() then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[3])
return 1
"""
)

# ARGV: id, worker, state, report JSON ('' for none), error ('' for none), whether there is an error
_FINISH = (
    _NOW
    + _HOLDS
    + """
if not holds() then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'finished_at', stamp(now))
redis.call('HDEL', KEYS[1], 'lease_until', 'report', 'error')
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'report', ARGV[4]) end
if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
)

# The check and the change in one step (the SQLite store reads, then writes).
_REQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then return state end
redis.call('HSET', KEYS[1], 'state', 'queued', 'progress', '{}')
redis.call('HDEL', KEYS[1], 'finished_at', 'report', 'error')
return 'ok'
"""

_EXPIRED = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. stamp(now))
"""
)

# Deliveries are a JSON list the store always writes whole: appending is splicing the text.
_ADD_DELIVERY = """
local current = redis.call('HGET', KEYS[1], 'deliveries')
if not current then return 0 end
if string.match(current, '^%[%s*%]$') then
    redis.call('HSET', KEYS[1], 'deliveries', '[' .. ARGV[1] .. ']')
else
    redis.call('HSET', KEYS[1], 'deliveries', string.sub(current, 1, -2) .. ', ' .. ARGV[1] .. ']')
end
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _from_hash(flat: list | dict) -> Job:
    if isinstance(flat, dict):
        fields = {_text(k): _text(v) for k, v in flat.items()}
    else:
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}

    def number(name: str) -> float | None:
        return float(fields[name]) if name in fields else None

    return Job(
        id=fields["id"],
        kb=fields["kb"],
        kind=fields["kind"],
        state=fields["state"],
        params=json.loads(fields["params"]),
        created_at=float(fields["created_at"]),
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        runs=int(fields.get("runs", "0")),
        worker=fields.get("worker"),
        lease_until=number("lease_until"),
        progress=json.loads(fields.get("progress", "{}")),
        report=json.loads(fields["report"]) if "report" in fields else None,
        error=fields.get("error"),
        deliveries=json.loads(fields.get("deliveries", "[]")),
    )


class RedisJobStore:
    """The shared job store: every instance and worker on every machine sees the same jobs.

    Job records are kept, as in jobs.db, until someone deletes them (no TTL): `kb jobs` and
    GET /v1/jobs/{id} answer for old jobs too.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._created = shared.key("jobs", "created")
        self._leases = shared.key("jobs", "leases")
        self._scripts = {
            name: client.register_script(source)
            for name, source in (
                ("create", _CREATE),
                ("claim", _CLAIM),
                ("renew", _RENEW),
                ("progress", _PROGRESS),
                ("finish", _FINISH),
                ("requeue", _REQUEUE),
                ("expired", _EXPIRED),
                ("add_delivery", _ADD_DELIVERY),
            )
        }

    @staticmethod
    def _job_key(job_id: str) -> str:
        return shared.key("jobs", "job", job_id)

    def _run(self, script: str, doing: str, keys: list[str], args: list[Any]) -> Any:
        with shared.translated(self._client, doing):
            return self._scripts[script](keys=keys, args=args)

    def close(self) -> None:
        shared.release(self._client)

    def create(self, kb: str, kind: str, params: dict) -> Job:
        job_id = f"job_{uuid.uuid4().hex[:20]}"
        created = self._run(
            "create", "recording a job", [self._job_key(job_id), self._created], [job_id, kb, kind, json.dumps(params)]
        )
        return Job(id=job_id, kb=kb, kind=kind, state="queued", params=params, created_at=float(created))

    def get(self, job_id: str) -> Job:
        with shared.translated(self._client, f"reading job {job_id}"):
            fields = self._client.hgetall(self._job_key(job_id))
        if not fields:
            raise KbNotFound(f"there is no job {job_id!r}; `kb jobs` lists the jobs")
        return _from_hash(fields)

    def recent(self, kb: str | None = None, state: str | None = None, limit: int = 100) -> list[Job]:
        """The newest jobs first, read a page at a time until `limit` match."""
        found: list[Job] = []
        start, page = 0, max(limit, 100)
        while len(found) < limit:
            with shared.translated(self._client, "listing jobs"):
                ids = cast(list[bytes], self._client.zrevrange(self._created, start, start + page - 1))
                if not ids:
                    break
                pipe = self._client.pipeline(transaction=False)
                for job_id in ids:
                    pipe.hgetall(self._job_key(_text(job_id)))
                rows = pipe.execute()
            for fields in rows:
                if not fields:  # deleted since it was listed
                    continue
                job = _from_hash(fields)
                if (kb is None or job.kb == kb) and (state is None or job.state == state):
                    found.append(job)
            start += page
        return found[:limit]

    def claim(self, job_id: str, worker: str, lease_s: float) -> Job | None:
        """Takes the job for `worker` if it is queued or its lease ran out; None if another
        worker holds it, it is finished, or there is no such job."""
        flat = self._run(
            "claim", f"claiming job {job_id}", [self._job_key(job_id), self._leases], [job_id, worker, lease_s]
        )
        return _from_hash(flat) if flat else None

    def renew(self, job_id: str, worker: str, lease_s: float) -> bool:
        """Extends the lease; False if the job is no longer this worker's."""
        done = self._run(
            "renew",
            f"renewing the lease of job {job_id}",
            [self._job_key(job_id), self._leases],
            [job_id, worker, lease_s],
        )
        return done == 1

    def progress(self, job_id: str, worker: str, progress: dict) -> None:
        self._run(
            "progress",
            f"recording the progress of job {job_id}",
            [self._job_key(job_id)],
            [job_id, worker, json.dumps(progress)],
        )

    def finish(self, job_id: str, worker: str, state: str, report: dict | None, error: str | None) -> bool:
        """Records the outcome; False if the job was taken over meanwhile (the lease ran out)."""
        done = self._run(
            "finish",
            f"recording the outcome of job {job_id}",
            [self._job_key(job_id), self._leases],
            [
                job_id,
                worker,
                state,
                json.dumps(report) if report is not None else "",
                error or "",
                "1" if error is not None else "0",
            ],
        )
        return done == 1

    def requeue(self, job_id: str) -> Job:
        """`kb jobs retry`: a finished job runs again (a running one cannot be retried)."""
        outcome = _text(self._run("requeue", f"requeueing job {job_id}", [self._job_key(job_id)], []))
        if outcome == "missing":
            raise KbNotFound(f"there is no job {job_id!r}; `kb jobs` lists the jobs")
        if outcome != "ok":
            raise Conflict(f"job {job_id} is {outcome}; only a done or failed job can be retried")
        return self.get(job_id)

    def expired(self) -> list[str]:
        """Running jobs whose lease ran out: their worker stopped."""
        return [_text(i) for i in self._run("expired", "looking for expired jobs", [self._leases], [])]

    def add_delivery(self, job_id: str, delivery: dict) -> None:
        self._run(
            "add_delivery", f"recording a delivery of job {job_id}", [self._job_key(job_id)], [json.dumps(delivery)]
        )


if TYPE_CHECKING:  # mypy holds both stores to the protocol
    _STORES: tuple[type[JobStore], ...] = (SqliteJobStore, RedisJobStore)
