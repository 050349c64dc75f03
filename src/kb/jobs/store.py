"""The job records: what a background job was asked to do, where it stands, what it did.

The queue (huey) only carries job ids from producers to workers; this store is the source
of truth for a job's state, so `kb jobs` and GET /v1/jobs never depend on what is still in
the queue. A worker claims a job by taking its lease, and renews the lease while it runs;
a job whose lease ran out (its worker died) can be claimed again by another worker. An
ingest job splits into parts (`split`): records of their own, with a lease each, that
any worker may claim; they stay out of the job lists and go when the job is retried. The
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from kb.errors import Conflict, JobNotFound
from kb.options import IngestScope, JobState
from kb.sqlite import Database, Migration

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

# Parts of a split job: `parent` names the job, whose `plan` holds what its planning found.
_SCHEMA_2 = """
ALTER TABLE jobs ADD COLUMN parent TEXT;
ALTER TABLE jobs ADD COLUMN plan TEXT;
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs(parent);
"""

MIGRATIONS: list[Migration] = [_SCHEMA_1, _SCHEMA_2]
PART = "ingest-part"  # the kind of a split job's parts


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


@dataclass
class Job:
    id: str
    kb: str
    kind: str
    state: JobState
    scope: IngestScope
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    runs: int = 0
    worker: str | None = None
    lease_until: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: str | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    callback_url: str | None = None
    parent: str | None = None  # the job this part belongs to
    plan: dict[str, Any] | None = None  # a split job's planning (see jobs/runner.py)

    @property
    def params(self) -> dict[str, Any]:
        """What the job was asked to do, as stored and shown: the scope and the callback."""
        return {**self.scope.to_json(), "callback_url": self.callback_url}

    def to_json(self) -> dict[str, Any]:
        """The job as `kb jobs --json`, GET /v1/jobs/{id} and webhook bodies show it."""
        out: dict[str, Any] = {"id": self.id, "kb": self.kb, "kind": self.kind, "state": self.state,
                               "params": self.params}  # fmt: skip
        for key in ("created_at", "started_at", "finished_at"):
            out[key] = _iso(getattr(self, key))
        for key in ("runs", "worker", "progress", "report", "error", "deliveries"):
            out[key] = getattr(self, key)
        return out


def part_id(job_id: str, n: int) -> str:
    return f"{job_id}.{n:05d}"


def not_found(job_id: str) -> JobNotFound:
    return JobNotFound(f"there is no job {job_id!r}", remedy="list_jobs", job=job_id)


def job_from_fields(fields: Mapping[str, Any]) -> Job:
    """A job from its stored fields: a jobs.db row, or a Redis hash decoded to text, where
    numbers are strings and unset fields are absent."""

    def number(name: str) -> float | None:
        value = fields.get(name)
        return None if value is None else float(value)

    def decoded(name: str, default: Any) -> Any:
        value = fields.get(name)
        return json.loads(value) if value else default

    params = json.loads(fields["params"])
    return Job(
        id=fields["id"],
        kb=fields["kb"],
        kind=fields["kind"],
        state=cast(JobState, fields["state"]),
        scope=IngestScope.from_json(params),
        callback_url=params.get("callback_url"),
        created_at=float(fields["created_at"]),
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        runs=int(fields.get("runs") or 0),
        worker=fields.get("worker"),
        lease_until=number("lease_until"),
        progress=decoded("progress", {}),
        report=decoded("report", None),
        error=fields.get("error"),
        deliveries=decoded("deliveries", []),
        parent=fields.get("parent") or None,
        plan=decoded("plan", None),
    )


class JobStore(Protocol):
    """What the runner, the CLI and the service use; SqliteJobStore and RedisJobStore both are one."""

    def create(self, kb: str, kind: str, scope: IngestScope, callback_url: str | None = None) -> Job: ...
    def get(self, job_id: str) -> Job: ...
    def recent(self, kb: str | None = None, state: JobState | None = None, limit: int = 100) -> list[Job]: ...
    def claim(self, job_id: str, worker: str, lease_s: float) -> Job | None: ...
    def renew(self, job_id: str, worker: str, lease_s: float) -> bool: ...
    def progress(self, job_id: str, worker: str, progress: dict[str, Any]) -> None: ...
    def finish(
        self, job_id: str, worker: str, state: JobState, report: dict[str, Any] | None, error: str | None
    ) -> bool: ...
    def requeue(self, job_id: str) -> Job: ...
    def split(self, job_id: str, worker: str, parts: list[IngestScope], plan: dict[str, Any]) -> list[Job] | None: ...
    def parts(self, job_id: str) -> list[Job]: ...
    def expired(self) -> list[str]: ...
    def add_delivery(self, job_id: str, delivery: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class SqliteJobStore:
    """The embedded job store: `jobs.db` under the KB home."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    def create(self, kb: str, kind: str, scope: IngestScope, callback_url: str | None = None) -> Job:
        job = Job(id=f"job_{uuid.uuid4().hex[:20]}", kb=kb, kind=kind, state="queued", scope=scope,
                  created_at=time.time(), callback_url=callback_url)  # fmt: skip
        self._db.execute(
            "INSERT INTO jobs(id, kb, kind, state, params, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (job.id, kb, kind, job.state, json.dumps(job.params), job.created_at),
        )
        return job

    def get(self, job_id: str) -> Job:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise not_found(job_id)
        return job_from_fields(dict(row))

    def recent(self, kb: str | None = None, state: JobState | None = None, limit: int = 100) -> list[Job]:
        clauses: list[str] = ["parent IS NULL"]
        params: list[Any] = []
        if kb is not None:
            clauses.append("kb = ?")
            params.append(kb)
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY created_at DESC LIMIT ?"
        return [job_from_fields(dict(r)) for r in self._db.execute(sql, (*params, limit))]

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

    def progress(self, job_id: str, worker: str, progress: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE jobs SET progress = ? WHERE id = ? AND worker = ? AND state = 'running'",
            (json.dumps(progress), job_id, worker),
        )

    def finish(
        self, job_id: str, worker: str, state: JobState, report: dict[str, Any] | None, error: str | None
    ) -> bool:
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
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = 'queued', finished_at = NULL, report = NULL, error = NULL, progress = '{}', "
                "plan = NULL WHERE id = ?",
                (job_id,),
            )
            conn.execute("DELETE FROM jobs WHERE parent = ?", (job_id,))  # the retry plans afresh
        return self.get(job_id)

    def split(self, job_id: str, worker: str, parts: list[IngestScope], plan: dict[str, Any]) -> list[Job] | None:
        """Records the plan of a job `worker` holds and its parts, queued, in one step; None
        if the job is no longer this worker's. Parts have ids of the job's plus a number."""
        now = time.time()
        with self._db.transaction() as conn:
            row = conn.execute("SELECT kb, worker, state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["worker"] != worker or row["state"] != "running":
                return None
            conn.execute("UPDATE jobs SET plan = ? WHERE id = ?", (json.dumps(plan), job_id))
            conn.executemany(
                "INSERT OR REPLACE INTO jobs(id, kb, kind, state, params, created_at, parent) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                [(part_id(job_id, n), row["kb"], PART, json.dumps(scope.to_json()), now, job_id)
                 for n, scope in enumerate(parts)],
            )  # fmt: skip
        return self.parts(job_id)

    def parts(self, job_id: str) -> list[Job]:
        rows = self._db.execute("SELECT * FROM jobs WHERE parent = ? ORDER BY id", (job_id,)).fetchall()
        return [job_from_fields(dict(r)) for r in rows]

    def expired(self) -> list[str]:
        """Running jobs whose lease ran out: their worker stopped."""
        rows = self._db.execute(
            "SELECT id FROM jobs WHERE state = 'running' AND lease_until < ?", (time.time(),)
        ).fetchall()
        return [r["id"] for r in rows]

    def add_delivery(self, job_id: str, delivery: dict[str, Any]) -> None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT deliveries FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            deliveries = json.loads(row["deliveries"]) + [delivery]
            conn.execute("UPDATE jobs SET deliveries = ? WHERE id = ?", (json.dumps(deliveries), job_id))
