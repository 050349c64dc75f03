"""A file larger than a batch is embedded and stored a batch at a time, and a killed run's
batches are not embedded again: the next run resumes the file where the kill stopped it
(real kb processes, real Chroma and SQLite; hash embedder)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_kb
from tests.reliability.kbstate import manifest_records, snapshot, store_texts

ENV = {"KB_MODEL": "hash", "KB_INGEST_BATCH": "16"}


def _big_file(folder: Path) -> Path:
    folder.mkdir(parents=True)
    paragraphs = [
        f"Paragraph {i}: the colony in hive {i % 37} stored {i * 3} grams of honey near frame {i % 10}, "
        f"and the beekeeper noted brood, pollen and queen cells on inspection number {i}."
        for i in range(4000)
    ]
    path = folder / "logbook.txt"
    path.write_text("\n\n".join(paragraphs) + "\n")
    return path


def _queued(home: Path) -> int:
    """Chunks the running ingest has handed to Chroma so far: the rows of its write log, read
    from its SQLite file without loading the index."""
    db = home / "kbs" / "default" / "chroma" / "chroma.sqlite3"
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM embeddings_queue").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # created but not yet migrated, or locked for a moment
        return 0


def test_a_big_file_killed_half_way_resumes_where_it_stopped_hash_embedder(tmp_path):
    docs = tmp_path / "docs"
    big = _big_file(docs)
    reference = tmp_path / "reference"
    done = run_kb("ingest", docs, "--json", env={**ENV, "KB_HOME": str(reference)})
    assert done.code == 0, done.err
    total = done.json()["chunks_added"]
    assert total > 20 * 16 and done.json()["chunks_embedded"] == total

    # Killed by progress, once a share of the file's chunks is in the store: not after a share
    # of another run's time, which start-up alone can exceed on a loaded machine.
    for attempt, share in enumerate((0.5, 0.3, 0.7, 0.2)):
        home = tmp_path / f"home{attempt}"
        proc = subprocess.Popen([sys.executable, "-m", "kb", "ingest", str(docs), "--json"],
                                env={**os.environ, **ENV, "KB_HOME": str(home)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        while proc.poll() is None and _queued(home) < total * share and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if not (home / "kbs" / "default" / "chroma").exists() or str(big) in manifest_records(home):
            continue  # the run finished first
        stored = len(store_texts(home))
        if 0 < stored < total:
            break
    else:
        raise AssertionError("no kill landed while the big file was part-way stored")

    again = run_kb("ingest", docs, "--json", env={**ENV, "KB_HOME": str(home)})
    assert again.code == 0, again.err
    report = again.json()
    assert report["added"] == 1 and report["chunks_added"] == total
    assert report["chunks_embedded"] == total - stored  # the killed run's batches were kept
    assert snapshot(home, docs) == snapshot(reference, docs)
