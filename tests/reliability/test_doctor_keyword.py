"""kb doctor checks the keyword index against the manifest and rebuilds it from the stored
chunk texts; a killed ingest leaves no keyword rows for files it did not commit. Real
Chroma and SQLite; hash embedder (a fake model, named in each test)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_kb
from tests.reliability.kbstate import committed_current, manifest_records, store_texts
from tests.reliability.test_doctor import _corpus

HASH = {"KB_MODEL": "hash"}


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "kbs" / "default" / "manifest.db", isolation_level=None)


def _keyword_ids(home: Path) -> set[str]:
    conn = _db(home)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM chunks")}
    finally:
        conn.close()


def _listed_ids(home: Path) -> set[str]:
    return {i for r in manifest_records(home).values() for i in r.chunk_ids}


def _doctor(*args: str) -> dict:
    res = run_kb("doctor", "--json", *args, env=HASH)
    assert res.out.strip(), f"kb doctor {' '.join(args)} printed no report (exit {res.code}): {res.err[-2000:]}"
    return json.loads(res.out)


def _keyword_search(query: str) -> list[dict]:
    res = run_kb("search", query, "--mode", "keyword", "-k", "20", "--json", env=HASH)
    assert res.code == 0, res.err
    return res.ndjson()


def test_doctor_finds_and_rebuilds_a_damaged_keyword_index_hash_embedder(tmp_path, kb_home):
    corpus = _corpus(tmp_path / "docs")
    assert run_kb("ingest", corpus, env=HASH).code == 0
    assert _doctor()["healthy"]
    before_store = store_texts(kb_home)
    found_before = {h["chunk_id"] for h in _keyword_search("evaporate")}
    conn = _db(kb_home)
    ids = sorted(_listed_ids(kb_home))
    conn.execute("DELETE FROM chunks WHERE id = ?", (ids[0],))  # a missing row (index kept in step)
    conn.execute("INSERT INTO chunks(id, source, text) VALUES ('orphan', '/nowhere.md', 'evaporate')")
    conn.close()

    report = _doctor()
    assert not report["healthy"]
    details = [p["detail"] for p in report["problems"] if p["kind"] == "keyword_index"]
    assert any("1 chunks are missing" in d for d in details) and any("1 keyword index rows" in d for d in details)

    repaired = _doctor("--repair")
    assert repaired["healthy"], repaired
    assert any("rebuilt the keyword index" in line for line in repaired["repaired"])
    assert _keyword_ids(kb_home) == _listed_ids(kb_home)
    assert store_texts(kb_home) == before_store  # rebuilt from the stored texts, nothing re-embedded
    assert {h["chunk_id"] for h in _keyword_search("evaporate")} == found_before


def test_doctor_finds_a_full_text_index_out_of_step_with_its_rows_hash_embedder(tmp_path, kb_home):
    corpus = _corpus(tmp_path / "docs", n=4)
    assert run_kb("ingest", corpus, env=HASH).code == 0
    conn = _db(kb_home)
    conn.execute("DROP TRIGGER chunks_ad")  # deletes now bypass the full-text index
    conn.execute("DELETE FROM chunks WHERE rowid = (SELECT min(rowid) FROM chunks)")
    conn.close()

    report = _doctor()
    details = [p["detail"] for p in report["problems"] if p["kind"] == "keyword_index"]
    assert any("lacks chunks_ad" in d for d in details), report

    conn = _db(kb_home)
    conn.execute(
        "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN INSERT INTO chunks_fts(chunks_fts, rowid, text, "
        "heading) VALUES ('delete', old.rowid, old.text, old.heading); END"
    )
    conn.close()
    report = _doctor()
    details = [p["detail"] for p in report["problems"] if p["kind"] == "keyword_index"]
    assert any("full-text entries belong to no stored chunk" in d for d in details), report

    assert _doctor("--repair")["healthy"]
    assert _keyword_ids(kb_home) == _listed_ids(kb_home)
    # (The vector store may keep orphans of the killed runs, a separate matter doctor repairs.)
    assert [p for p in _doctor()["problems"] if p["kind"] == "keyword_index"] == []


def test_doctor_builds_the_keyword_index_of_an_old_kb_hash_embedder(tmp_path, kb_home):
    corpus = _corpus(tmp_path / "docs", n=3)
    assert run_kb("ingest", corpus, env=HASH).code == 0
    conn = _db(kb_home)
    for statement in ("DROP TRIGGER chunks_ai", "DROP TRIGGER chunks_ad", "DROP TRIGGER chunks_au",
                      "DROP TABLE chunks_fts", "DROP TABLE chunks", "DELETE FROM meta WHERE key = 'keyword_index'",
                      "PRAGMA user_version = 2"):  # fmt: skip
        conn.execute(statement)
    conn.close()
    report = _doctor()  # the migration runs (schema 3), the index is pending
    assert [p["kind"] for p in report["problems"]] == ["keyword_index"]
    assert _doctor("--repair")["healthy"]
    assert _keyword_ids(kb_home) == _listed_ids(kb_home)


def test_a_killed_ingest_leaves_keyword_rows_for_committed_files_only_hash_embedder(tmp_path, kb_home):
    corpus = _corpus(tmp_path / "docs", n=150)
    env = {**HASH, "KB_INGEST_BATCH": "16"}  # many small commits, so a kill lands between them
    import os

    partial = 0
    # Killed once the run has committed this many of the 150 files: by progress, not by a
    # time measured on another run (start-up time varies more than the ingest takes).
    for revision, after in enumerate((1, 40, 80, 120)):
        for path in corpus.glob("*.md"):  # every file changed: each run rewrites them all
            path.write_text(path.read_text() + f"\nrevision {revision}\n")
        proc = subprocess.Popen(
            [sys.executable, "-m", "kb", "ingest", str(corpus)], env=dict(os.environ, **env),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if (kb_home / "kbs" / "default" / "manifest.db").exists() and committed_current(kb_home) >= after:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        # Exactly the committed chunks: none of the new chunks of files the run did not commit.
        assert _keyword_ids(kb_home) == _listed_ids(kb_home)
        partial += 0 < committed_current(kb_home) < 150
    assert partial, "no kill landed in the middle of a run"
    final = run_kb("ingest", corpus, "--json", env=env)
    if final.code != 0:
        # A kill in the middle of a Chroma write may leave its index damaged: kb refuses to
        # load it and says how to rebuild it (tests/reliability/test_doctor.py covers that).
        assert "the vector index is damaged" in final.err and "kb doctor --repair" in final.err, final.err[-1500:]
        _doctor("--repair")
        final = run_kb("ingest", corpus, "--json", env=env)
    assert final.code == 0, (final.out[-1500:], final.err[-1500:])
    assert _keyword_ids(kb_home) == _listed_ids(kb_home)
    # (The vector store may keep orphans of the killed runs, a separate matter doctor repairs.)
    assert [p for p in _doctor()["problems"] if p["kind"] == "keyword_index"] == []
