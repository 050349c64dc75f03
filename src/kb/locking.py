"""The per-KB write lock: one writer at a time, across threads, processes and instances.

Embedded: a file lock (flock) beside the KB's data. It is tied to an open file, so a second
thread of the same process waits like another process does, and a writer that dies
releases it. Shared (`state.url`): a lease on Redis, below.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.errors import LockTimeout, StoreError

if TYPE_CHECKING:
    import redis

log = logging.getLogger("kb")

LOCK_NAME = "write.lock"


@contextmanager
def write_lock(kb_dir: Path, kb: str, timeout_s: float, on_wait: Callable[[str], None]) -> Iterator[Held]:
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
        yield Held()
    finally:
        lock.release()


class Held:
    """What a writer holds. `check` raises if the lock is no longer this writer's: a file
    lock cannot be lost while its process lives; a lease on Redis can (it expired while
    Redis was out of reach for longer than the lease), and then another writer may start."""

    def check(self) -> None:
        pass


class _Lease(Held):
    def __init__(self, lock: Any, kb: str) -> None:
        self._lock, self._kb = lock, kb

    def check(self) -> None:
        import redis as redis_lib

        try:
            owned = self._lock.owned()
        except redis_lib.RedisError as exc:
            raise StoreError(
                f"cannot confirm the write lock on {self._kb!r} ({exc}); nothing more is committed"
            ) from exc
        if not owned:
            raise LockTimeout(
                f"the write lock on {self._kb!r} expired while this instance held it (its lease was not renewed in "
                "time); nothing more is committed, and the next ingest resumes where this one stopped"
            )


@contextmanager
def shared_write_lock(
    client: redis.Redis, kb: str, timeout_s: float, lease_s: float, on_wait: Callable[[str], None]
) -> Iterator[Held]:
    """The write lock for instances that share a KB through Redis: a lease of `lease_s`
    seconds, renewed every third of it while the holder lives. A holder that dies (SIGKILL,
    a lost machine) stops renewing, and its lease expires: the next writer waits at most
    `lease_s` for it. redis-py's Lock sets it with SET NX PX and renews and releases it only
    with its own token, so no instance can release another's."""
    import redis as redis_lib

    from kb.state import key, translated

    lock = client.lock(key("kb", kb, "write-lock"), timeout=lease_s, thread_local=False)
    with translated(client, f"locking {kb!r} for writing"):
        if not lock.acquire(blocking=False):
            on_wait(f"another kb instance is writing to {kb!r}; waiting up to {timeout_s:g}s")
            if not lock.acquire(blocking=True, blocking_timeout=timeout_s):
                raise LockTimeout(
                    f"knowledge base {kb!r} is still locked by another kb instance after {timeout_s:g}s; "
                    "try again later or raise lock_timeout_s"
                )
    log.info("write lock on %r taken at %.6f", kb, time.time())  # `--debug`: who wrote when
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                lock.reacquire()
            except redis_lib.exceptions.LockNotOwnedError:
                log.error("the write lock on %r expired while this instance held it; another may write", kb)
                return
            except redis_lib.RedisError as exc:  # Redis away for a moment: try again next round
                log.warning("could not renew the write lock on %r (%s)", kb, exc)

    renewer = threading.Thread(target=renew, name=f"kb-lease-{kb}", daemon=True)
    renewer.start()
    try:
        yield _Lease(lock, kb)
    finally:
        stop.set()
        renewer.join()
        log.info("write lock on %r released at %.6f", kb, time.time())
        with contextlib.suppress(redis_lib.RedisError):  # expired or unreachable: the lease ends it anyway
            lock.release()
