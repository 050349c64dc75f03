"""Guarding against an index damaged by an interrupted write.

A write killed half-way can leave Chroma's HNSW files in a state that makes its native
code segfault the next process that loads them — a crash no `except` can catch. So every
kb write leaves a marker (`write.unfinished`) for its duration. A process that finds the
marker while no writer holds the lock knows a write died: before loading the index itself
it loads it in a child process (kb.store.probe). If the child dies or fails, the user gets
a clear error that says a repair rebuilds the index; if it passes, the marker goes.

Damage from outside kb (disk faults, edited files) is what `kb doctor` is for: it always
probes. File signatures cannot stand in for the marker: Chroma rewrites the HNSW files of
a collection with unsynced log entries on every open, reads included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kb.errors import StoreError
from kb.locking import LOCK_NAME
from kb.store import COLLECTION_PREFIX

PROBE_TIMEOUT_S = 300


def probe_index(chroma_dir: Path, collection: str) -> tuple[list[str] | None, str | None]:
    """Loads and queries the index in a child process: (ids, None) if healthy, else (None, why)."""
    if not chroma_dir.exists():
        return [], None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kb.store.probe", str(chroma_dir), collection],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None, f"the index did not answer within {PROBE_TIMEOUT_S}s"
    if proc.returncode == 0:
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])["ids"], None
        except (ValueError, IndexError, KeyError):
            pass
    if proc.returncode < 0:
        return None, f"loading the index crashed the process (signal {-proc.returncode})"
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if "does not exist" in last and "ollection" in last:
        return [], None  # an empty KB never created its collection
    return None, f"the index failed to open or answer ({last[:300]})"


MARKER = "write.unfinished"


def begin_write(kb_dir: Path, kb: str) -> bool:
    """Called by a writer holding the lock, before it opens the store. True if the previous
    write was interrupted (and the index has been checked since)."""
    marker = kb_dir / MARKER
    interrupted = marker.exists()
    if interrupted:
        _verify(kb_dir, kb)  # the previous writer died: do not load what it left unchecked
    kb_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    return interrupted


def end_write(kb_dir: Path) -> None:
    """Called when the write returned normally: the index files are whole."""
    (kb_dir / MARKER).unlink(missing_ok=True)


def before_read(kb_dir: Path, kb: str) -> None:
    """Called before this process loads the index (again): if a writer died mid-write,
    the index is probed in a child process first."""
    marker = kb_dir / MARKER
    if not marker.exists():
        return
    from filelock import FileLock, Timeout

    lock = FileLock(str(kb_dir / LOCK_NAME), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return  # a live writer (possibly in this process) owns the marker
    except OSError:  # a read-only KB: no writer can be live, and the mark cannot be cleared
        _verify(kb_dir, kb)
        return
    try:
        if marker.exists():
            _verify(kb_dir, kb)
            marker.unlink(missing_ok=True)
    finally:
        lock.release()


def _verify(kb_dir: Path, kb: str) -> None:
    _, why = probe_index(kb_dir / "chroma", COLLECTION_PREFIX + kb)
    if why:
        raise StoreError(f"the vector index is damaged (a write was interrupted): {why}", remedy="repair", kb=kb)
