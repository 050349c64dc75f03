"""Guarding against a damaged vector index.

A write killed half-way can leave Chroma's HNSW files in a state that makes its native
code segfault the next process that loads them — a crash no `except` can catch. So kb
only loads index files it has seen load: after each clean write it records a signature of
the files (names, sizes, mtimes; reads leave them alone), and a process that finds
different files first loads them in a child process (kb.store.probe). If the child dies,
the user gets a clear error that says to run `kb doctor --repair`, not a segfault.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from kb.errors import StoreError

PROBE_TIMEOUT_S = 300
_VERIFIED = "index.verified"


def signature(chroma_dir: Path) -> str:
    """Of the index segment files only: chroma.sqlite3 changes on every open, and its
    damage surfaces as Python exceptions, not crashes."""
    parts = []
    for segment in sorted(p for p in chroma_dir.iterdir() if p.is_dir()) if chroma_dir.is_dir() else []:
        for f in sorted(segment.iterdir()):
            st = f.stat()
            parts.append(f"{segment.name}/{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""


def probe_index(chroma_dir: Path, collection: str) -> tuple[list[str] | None, str | None]:
    """Loads and queries the index in a child process: (ids, None) if healthy, else (None, why)."""
    if not chroma_dir.exists():
        return [], None
    try:
        proc = subprocess.run([sys.executable, "-m", "kb.store.probe", str(chroma_dir), collection],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
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


def record(kb_dir: Path) -> None:
    """Called after kb itself wrote the index cleanly (or a probe passed)."""
    (kb_dir / _VERIFIED).write_text(signature(kb_dir / "chroma"))


def ensure_loadable(kb_dir: Path, collection: str) -> None:
    current = signature(kb_dir / "chroma")
    try:
        if not current or (kb_dir / _VERIFIED).read_text() == current:
            return
    except OSError:
        pass
    _, why = probe_index(kb_dir / "chroma", collection)
    if why:
        raise StoreError(f"the vector index is damaged: {why}; run `kb doctor --repair` to rebuild it")
    record(kb_dir)
