"""A knowledge base's vectors in a local Chroma store (PersistentClient) under KB_HOME.

chromadb 1.5's local client is not safe for concurrent calls on one store: threads querying
together hung in its Rust bindings or crashed in the HNSW walk
(tests/reliability/test_threads.py; chroma-core/chroma#6979), and a process that read a
store while another process wrote it crashed in a query (SIGSEGV in the same test, in CI;
chromadb's Rust bindings load the HNSW files another writer may be rewriting). So each call
holds, for its duration, a lock of this process (one call at a time per path) and a file
lock beside the store, shared for reads and exclusive for writes and opening, so no process
reads while another writes. A call takes milliseconds; a read waits at most for one write
batch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from kb.errors import StoreError
from kb.store.collection import ChromaCollection, Operation, T, open_collection


class _Access:
    def __init__(self, path: Path) -> None:
        self._thread = threading.Lock()
        self._fd: int | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path.parent / "chroma.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only home: no kb process can be writing it
            self._fd = None

    @contextlib.contextmanager
    def __call__(self, write: bool = False) -> Iterator[None]:
        with self._thread:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                yield
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)


_ACCESS: dict[str, _Access] = {}
_ACCESS_GUARD = threading.Lock()


def _access(path: Path) -> _Access:
    with _ACCESS_GUARD:
        key = str(path.resolve())
        if key not in _ACCESS:
            _ACCESS[key] = _Access(path)
        return _ACCESS[key]


class LocalChromaStore(ChromaCollection):
    """The collection of knowledge base `kb` in the Chroma folder `path`."""

    def __init__(self, path: Path, kb: str) -> None:
        self._path, self._kb = path, kb
        self._snapshot = readonly_snapshot(path)
        self._access = _access(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            with self._access(write=True):  # opening may create the collection
                self._open(create=True)
        except Exception as exc:  # chromadb raises assorted internal types on a damaged store
            self._remove_snapshot()
            raise StoreError(f"cannot open the vector store at {path} ({exc})", remedy="repair", kb=kb) from exc

    def _open(self, create: bool) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self._client = chromadb.PersistentClient(
            path=str(self._snapshot or self._path),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )
        self._col = open_collection(self._client, self._kb, create)
        self._batch = self._client.get_max_batch_size()

    def _call(self, what: str, operation: Operation[T], write: bool = False) -> T:
        """Runs one operation under the store's access lock. An index loaded before another
        process deleted chunks fails with "Error finding id": the store is opened again and
        the operation repeated once."""
        with self._access(write=write):
            try:
                return operation(self._col)
            except Exception as exc:
                if "error finding id" not in str(exc).lower():
                    raise StoreError(f"{what} ({exc})", remedy="diagnose", kb=self._kb) from exc
        with self._access(write=True):
            try:
                self._close_client()
                self._open(create=write)
                return operation(self._col)
            except Exception as exc:
                raise StoreError(f"{what} ({exc})", remedy="diagnose", kb=self._kb) from exc

    def _close_client(self) -> None:
        self._client.close()  # type: ignore[attr-defined]  # chromadb >= 1.4, missing from its stubs

    def close(self) -> None:
        # Chroma shares one system per path in a process, counted by reference: closing the
        # last client releases it, so a store reopened at the same path loads what other
        # processes wrote since (and a rebuilt store is not served from the old one).
        with self._access(write=True):  # closing may flush what this client wrote
            self._close_client()
        self._remove_snapshot()

    def _remove_snapshot(self) -> None:
        if self._snapshot is not None:
            shutil.rmtree(self._snapshot.parent, ignore_errors=True)
            self._snapshot = None


def readonly_snapshot(path: Path) -> Path | None:
    """A private copy of a store kb may not write to, or None if it may.

    Chroma writes to its SQLite file even to read, so a store under a read-only KB_HOME
    is searched from a temporary copy, removed again when the store is closed."""
    db = path / "chroma.sqlite3"
    if not db.exists() or (os.access(path, os.W_OK) and os.access(db, os.W_OK)):
        return None
    target = Path(tempfile.mkdtemp(prefix="kb-readonly-")) / "chroma"
    try:
        for folder, _, files in os.walk(path):  # contents only: the copy must be writable
            into = target / os.path.relpath(folder, path)
            into.mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copyfile(os.path.join(folder, name), into / name)
    except OSError as exc:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise StoreError(f"{path} is read-only and could not be copied to search it ({exc.strerror})") from exc
    return target


def stored_sources(path: Path) -> list[str]:
    """The sources named in a store's metadata, read from its SQLite file alone, without
    loading the vector index (which may be the damaged part). [] if that fails too."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{(path / 'chroma.sqlite3').resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT DISTINCT string_value FROM embedding_metadata WHERE key = 'source'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return sorted(r[0] for r in rows if r[0])
