"""The per-KB write lock: one writer at a time, across threads and processes.

A file lock (flock) beside the KB's data. It is tied to an open file, so a second thread of
the same process waits like another process does, and a writer that dies releases it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kb.errors import LockTimeout, StoreError

LOCK_NAME = "write.lock"


@contextmanager
def write_lock(kb_dir: Path, kb: str, timeout_s: float, on_wait: Callable[[str], None]) -> Iterator[None]:
    from filelock import FileLock, Timeout

    try:
        kb_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(kb_dir / LOCK_NAME), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            on_wait(f"another kb process is writing to {kb!r}; waiting up to {timeout_s:g}s")
            try:
                lock.acquire(timeout=timeout_s)
            except Timeout as exc:
                raise LockTimeout(
                    f"knowledge base {kb!r} is still locked by another kb process after {timeout_s:g}s; "
                    "try again later or raise lock_timeout_s"
                ) from exc
    except OSError as exc:
        raise StoreError(f"cannot lock {kb_dir} for writing ({exc.strerror}); kb needs write access to it") from exc
    try:
        yield
    finally:
        lock.release()
