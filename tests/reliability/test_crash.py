"""SIGKILL at random moments during `kb ingest`: the next run completes, nothing committed
is embedded again, and the end state equals an uninterrupted ingest.

Runs real kb processes on real Chroma and SQLite; the model is the hash embedder
(named in the test) so that a round takes seconds, not minutes. KB_INGEST_BATCH=8 makes
each run commit many times, so kills land between, inside and around commits.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_kb
from tests.reliability.kbstate import committed_current, snapshot

FILES = 200


def _write_corpus(folder: Path, rng: random.Random) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(FILES):
        (folder / f"sub{i % 7}").mkdir(exist_ok=True)
        _rewrite(folder / f"sub{i % 7}" / f"doc{i:03d}.md", i, 0, rng)


def _rewrite(path: Path, i: int, version: int, rng: random.Random) -> None:
    paragraphs = [
        f"Hive {i} paragraph {p}, revision {version}. "
        + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 120)))
        + "."
        for p in range(rng.randint(1, 5))
    ]
    path.write_text(f"# Document {i}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")


_WORDS = [
    "brood",
    "queen",
    "drone",
    "worker",
    "nectar",
    "pollen",
    "comb",
    "frame",
    "super",
    "smoker",
    "varroa",
    "mite",
    "swarm",
    "cell",
    "wax",
    "honey",
    "propolis",
    "forage",
    "winter",
    "spring",
    "cluster",
    "colony",
    "apiary",
    "inspection",
    "feeder",
    "syrup",
]


def _mutate(folder: Path, rng: random.Random, round_no: int) -> None:
    files = sorted(folder.rglob("*.md"))
    for path in rng.sample(files, 40):
        _rewrite(path, int(path.stem[3:]), round_no, rng)
    for path in rng.sample(files, 3):
        path.unlink()
    for j in range(3):
        n = 1000 + round_no * 10 + j
        _rewrite(folder / f"sub{n % 7}" / f"doc{n}.md", n, round_no, rng)


@pytest.mark.parametrize("kills", [12, pytest.param(100, marks=pytest.mark.soak)])
def test_sigkill_during_ingest_never_loses_or_duplicates_hash_embedder(tmp_path, kb_home, kills):
    _kill_and_compare(tmp_path, kb_home, kills, {"KB_MODEL": "hash", "KB_INGEST_BATCH": "8"})


@pytest.mark.soak
def test_sigkill_during_ingest_with_the_real_model(tmp_path, kb_home):
    # Kills land inside torch's encoder and the model load, not only in Chroma writes.
    _kill_and_compare(tmp_path, kb_home, 20, {"KB_INGEST_BATCH": "32"})


def _version(kb_home: Path) -> str | None:
    """The manifest's content version (each commit of a batch moves it), read-only."""
    db = kb_home / "kbs" / "default" / "manifest.db"
    if not db.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'content_version'").fetchone()
    except sqlite3.Error:
        return None  # created or migrated just now
    return row[0] if row else None


def _kill_and_compare(tmp_path: Path, kb_home: Path, kills: int, settings: dict) -> None:
    rng = random.Random(20261127 + kills)
    corpus = tmp_path / "docs"
    _write_corpus(corpus, rng)
    env = dict(os.environ, **settings)

    # How long an uninterrupted run takes here, to spread the kills over it (adjusted below
    # to the length of the runs that finish before their kill).
    started = time.perf_counter()
    assert run_kb("ingest", corpus, env={**settings, "KB_HOME": str(tmp_path / "timing")}).code == 0
    span = time.perf_counter() - started

    done, rounds, partial, marked = 0, 0, 0, 0
    while done < kills:
        rounds += 1
        assert rounds < kills * 3, f"only {done} of {rounds} runs were still running when killed"
        if rounds > 1:
            _mutate(corpus, rng, rounds)
        before = committed_current(kb_home) if rounds > 1 else 0
        version = _version(kb_home)
        proc = subprocess.Popen(
            [sys.executable, "-m", "kb", "ingest", str(corpus), "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.perf_counter()
        kill_at = started + rng.uniform(0.15, 0.95) * span
        # Every other kill waits for the run's first commit instead: a kill at a random
        # moment often lands in the process's start, before any commit, and a run of a few
        # changed files commits within a fraction of its length.
        after_commit = rounds % 2 == 0
        while proc.poll() is None and (_version(kb_home) == version if after_commit else time.perf_counter() < kill_at):
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            done += 1
        else:  # it finished first: aim the next kills at runs of this length
            span = time.perf_counter() - started
        proc.wait(timeout=60)
        marked += (kb_home / "kbs" / "default" / "write.unfinished").exists()

        must_skip = committed_current(kb_home)
        files_now = sum(1 for _ in corpus.rglob("*.md"))
        partial += before < must_skip < files_now
        after = run_kb("ingest", corpus, "--json", env=settings, timeout=300)
        assert after.code == 0, after.err
        report = after.json()
        assert report["failed"] == []
        # Committed files are recognised, not read into the encoder again.
        assert report["unchanged"] == must_skip, (report, must_skip)

    # Kills landed mid-run (some of the run's files committed, some not), not only before
    # the first commit or after the last.
    assert partial >= kills // 4, (partial, kills)
    # Killed writers left the unfinished-write mark, and the next run checked the index
    # in a child process before loading it (store/guard.py).
    assert marked >= partial
    assert not (kb_home / "kbs" / "default" / "write.unfinished").exists()

    reference = tmp_path / "reference"
    assert run_kb("ingest", corpus, env={**settings, "KB_HOME": str(reference)}).code == 0
    files, texts = snapshot(kb_home, corpus)
    ref_files, ref_texts = snapshot(reference, corpus)
    assert files == ref_files
    assert texts == ref_texts  # same ids and texts: nothing duplicated, missing or orphaned
    assert sorted(i for ids in files.values() for i in ids) == sorted(texts)

    hits = run_kb("search", "queen brood comb", "--json", "-k", "3", env=settings)
    assert hits.code == 0 and len(hits.ndjson()) == 3
    doctor = run_kb("doctor", "--json", env=settings)
    assert doctor.code == 0 and json.loads(doctor.out)["problems"] == [], doctor.out
