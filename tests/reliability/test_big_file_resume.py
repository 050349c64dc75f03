"""A file larger than a batch is embedded and stored a batch at a time, and a killed run's
batches are not embedded again: the next run resumes the file where the kill stopped it
(real kb processes, real Chroma and SQLite; hash embedder)."""

from __future__ import annotations

import os
import signal
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


def test_a_big_file_killed_half_way_resumes_where_it_stopped_hash_embedder(tmp_path):
    docs = tmp_path / "docs"
    big = _big_file(docs)
    reference = tmp_path / "reference"
    started = time.monotonic()
    done = run_kb("ingest", docs, "--json", env={**ENV, "KB_HOME": str(reference)})
    whole = time.monotonic() - started
    assert done.code == 0, done.err
    total = done.json()["chunks_added"]
    assert total > 20 * 16 and done.json()["chunks_embedded"] == total

    for attempt, fraction in enumerate((0.5, 0.65, 0.8, 0.4, 0.9, 0.3)):
        home = tmp_path / f"home{attempt}"
        proc = subprocess.Popen([sys.executable, "-m", "kb", "ingest", str(docs), "--json"],
                                env={**os.environ, **ENV, "KB_HOME": str(home)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(whole * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if not (home / "kbs" / "default" / "chroma").exists() or str(big) in manifest_records(home):
            continue  # killed before the first batch landed, or after the file was committed
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
