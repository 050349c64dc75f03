"""kb's SQLite files (jobs, manifest, metrics) opened by processes that start together."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from kb.sqlite import Database

ROUNDS = 40  # before the fix about one round in four failed


def _open(path: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    try:
        Database(Path(path), ["CREATE TABLE jobs(id TEXT)", "CREATE INDEX jobs_id ON jobs(id)"]).close()
        results.put("ok")
    except Exception as exc:  # the test reports what each process met
        results.put(repr(exc))


def test_processes_creating_one_new_database_at_once_all_open_it(tmp_path):
    """Two `kb worker`s started together on a new home: each used to fail at random with
    "database is locked" while the other switched the new file to WAL."""
    ctx = mp.get_context("fork")
    failures = []
    for n in range(ROUNDS):
        path = tmp_path / f"jobs-{n}.db"
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(str(path), barrier, results)) for _ in range(3)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(10)
        failures += [o for o in outcomes if o != "ok"]
        db = Database(path, ["CREATE TABLE jobs(id TEXT)", "CREATE INDEX jobs_id ON jobs(id)"])
        assert db.schema() == 2 and db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
    assert failures == []
