"""The shared job store on Redis (`state.url`), with the same interface as jobs.db's.

A job is a hash of its fields (absent = NULL), all text: numbers as the server wrote them,
params/progress/report/deliveries as JSON. Two sorted sets index the jobs: by created_at
(`recent`) and, for running jobs only, by lease_until (`expired`). Every change that the
SQLite store makes in one statement or transaction is one Lua script here, atomic on the
server; times are the Redis server's clock, which every worker shares, so a worker whose
own clock runs ahead cannot take a job whose lease is still live.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, cast

from kb import state as shared
from kb.errors import Conflict
from kb.jobs.store import Job, job_from_fields, not_found, part_id
from kb.options import IngestScope, JobState

if TYPE_CHECKING:
    import redis
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

# The check and the change in one step (the SQLite store reads, then writes). KEYS: the
# job, the list of its parts, the leases; ARGV[1]: the prefix of a job's key.
_REQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then return state end
redis.call('HSET', KEYS[1], 'state', 'queued', 'progress', '{}')
redis.call('HDEL', KEYS[1], 'finished_at', 'report', 'error', 'plan')
for _, part in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    redis.call('DEL', ARGV[1] .. part)
    redis.call('ZREM', KEYS[3], part)
end
redis.call('DEL', KEYS[2])
return 'ok'
"""

# KEYS: the job, the list of its parts, then each part's key; ARGV: worker, plan, then
# (part id, params) pairs. Parts stay out of the created index: job lists leave them out.
_SPLIT = (
    _NOW
    + """
if not (redis.call('HGET', KEYS[1], 'state') == 'running' and redis.call('HGET', KEYS[1], 'worker') == ARGV[1]) then
    return 0
end
redis.call('HSET', KEYS[1], 'plan', ARGV[2])
local kb = redis.call('HGET', KEYS[1], 'kb')
local parent = redis.call('HGET', KEYS[1], 'id')
redis.call('DEL', KEYS[2])
for i = 3, #KEYS do
    local id, params = ARGV[2 * i - 3], ARGV[2 * i - 2]
    redis.call('DEL', KEYS[i])
    redis.call('HSET', KEYS[i], 'id', id, 'kb', kb, 'kind', 'ingest-part', 'state', 'queued', 'params', params,
               'created_at', stamp(now), 'runs', '0', 'progress', '{}', 'deliveries', '[]', 'parent', parent)
    redis.call('RPUSH', KEYS[2], id)
end
return 1
"""
)

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


def _from_hash(flat: list | dict) -> Job:
    if isinstance(flat, dict):
        fields = {shared.text(k): shared.text(v) for k, v in flat.items()}
    else:
        fields = {shared.text(flat[i]): shared.text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return job_from_fields(fields)


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
                ("split", _SPLIT),
                ("expired", _EXPIRED),
                ("add_delivery", _ADD_DELIVERY),
            )
        }

    @staticmethod
    def _job_key(job_id: str) -> str:
        return shared.key("jobs", "job", job_id)

    @staticmethod
    def _parts_key(job_id: str) -> str:
        return shared.key("jobs", "parts", job_id)

    def _run(self, script: str, doing: str, keys: list[str], args: list[Any]) -> Any:
        with shared.translated(self._client, doing):
            return self._scripts[script](keys=keys, args=args)

    def close(self) -> None:
        shared.release(self._client)

    def create(self, kb: str, kind: str, scope: IngestScope, callback_url: str | None = None) -> Job:
        job_id = f"job_{uuid.uuid4().hex[:20]}"
        params = {**scope.to_json(), "callback_url": callback_url}
        created = self._run(
            "create", "recording a job", [self._job_key(job_id), self._created], [job_id, kb, kind, json.dumps(params)]
        )
        return Job(id=job_id, kb=kb, kind=kind, state="queued", scope=scope, created_at=float(created),
                   callback_url=callback_url)  # fmt: skip

    def get(self, job_id: str) -> Job:
        with shared.translated(self._client, f"reading job {job_id}"):
            fields = self._client.hgetall(self._job_key(job_id))
        if not fields:
            raise not_found(job_id)
        return _from_hash(fields)

    def recent(self, kb: str | None = None, state: JobState | None = None, limit: int = 100) -> list[Job]:
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
                    pipe.hgetall(self._job_key(shared.text(job_id)))
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

    def finish(self, job_id: str, worker: str, state: JobState, report: dict | None, error: str | None) -> bool:
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
        keys = [self._job_key(job_id), self._parts_key(job_id), self._leases]
        outcome = shared.text(self._run("requeue", f"requeueing job {job_id}", keys, [self._job_key("")]))
        if outcome == "missing":
            raise not_found(job_id)
        if outcome != "ok":
            raise Conflict(f"job {job_id} is {outcome}; only a done or failed job can be retried")
        return self.get(job_id)

    def split(self, job_id: str, worker: str, parts: list[IngestScope], plan: dict) -> list[Job] | None:
        """Records the plan of a job `worker` holds and its parts, queued, in one step; None
        if the job is no longer this worker's."""
        ids = [part_id(job_id, n) for n in range(len(parts))]
        keys = [self._job_key(job_id), self._parts_key(job_id), *(self._job_key(i) for i in ids)]
        args: list[Any] = [worker, json.dumps(plan)]
        for part, scope in zip(ids, parts, strict=True):
            args += [part, json.dumps(scope.to_json())]
        if self._run("split", f"splitting job {job_id}", keys, args) != 1:
            return None
        return self.parts(job_id)

    def parts(self, job_id: str) -> list[Job]:
        with shared.translated(self._client, f"reading the parts of job {job_id}"):
            ids = cast(list[bytes], self._client.lrange(self._parts_key(job_id), 0, -1))
            pipe = self._client.pipeline(transaction=False)
            for part in ids:
                pipe.hgetall(self._job_key(shared.text(part)))
            rows = pipe.execute() if ids else []
        return [_from_hash(fields) for fields in rows if fields]

    def expired(self) -> list[str]:
        """Running jobs whose lease ran out: their worker stopped."""
        return [shared.text(i) for i in self._run("expired", "looking for expired jobs", [self._leases], [])]

    def add_delivery(self, job_id: str, delivery: dict) -> None:
        self._run(
            "add_delivery", f"recording a delivery of job {job_id}", [self._job_key(job_id)], [json.dumps(delivery)]
        )


if TYPE_CHECKING:  # mypy holds both stores to the protocol
    from kb.jobs.store import JobStore, SqliteJobStore

    _STORES: tuple[type[JobStore], ...] = (SqliteJobStore, RedisJobStore)
