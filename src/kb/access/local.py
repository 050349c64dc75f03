"""Knowledge bases in folders under KB_HOME: `kbs/NAME/` holds the SQLite manifest and the
Chroma store; one writer at a time by a file lock beside them.

Chroma's local client caches the index in memory, so a reader reopens the store when the
manifest's content key moved since it opened it (another process committed). Before loading
an index another writer may have left half-written, the guard probes it in a child process
(store/guard.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from kb.access.base import KbAccess, OnWait, _quiet
from kb.concurrency import drop
from kb.config import Settings
from kb.config.loading import validate_kb_name
from kb.errors import KbNotFound, StoreError

if TYPE_CHECKING:
    from kb.ingest.manifest import Manifest
    from kb.locking import Held
    from kb.store import VectorStore

MANIFEST = "manifest.db"


def not_found(name: str, home: object, existing: list[str]) -> KbNotFound:
    known = f"existing: {', '.join(existing)}" if existing else "there are none yet"
    return KbNotFound(f"knowledge base {name!r} does not exist in {home} ({known})",
                      remedy="create_kb", kb=name, existing=existing)  # fmt: skip


class LocalStorage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def names(self) -> list[str]:
        kbs = self.settings.kbs_dir
        if not kbs.is_dir():
            return []
        return sorted(d.name for d in kbs.iterdir() if (d / MANIFEST).is_file() and not d.name.startswith("."))

    def exists(self, name: str) -> bool:
        return (self.settings.kbs_dir / name / MANIFEST).is_file()

    def require(self, name: str) -> None:
        if not self.exists(name):
            raise not_found(name, self.settings.home, self.names())

    def delete(self, name: str, on_wait: OnWait = _quiet) -> None:
        """Removes a knowledge base and everything in it, under its write lock."""
        self.require(name)
        kb_dir = self.settings.kbs_dir / name
        trash = self.settings.kbs_dir / f".deleted-{name}-{time.time_ns()}"
        with self.write_lock(name, on_wait):
            try:
                kb_dir.rename(trash)  # one step: a reader sees the KB whole or gone
            except OSError as exc:
                raise StoreError(f"cannot delete {kb_dir} ({exc.strerror})") from exc
        shutil.rmtree(trash, ignore_errors=True)

    def write_lock(
        self, name: str, on_wait: OnWait = _quiet, timeout_s: float | None = None
    ) -> AbstractContextManager[Held]:
        from kb.locking import write_lock

        timeout = self.settings.lock_timeout_s if timeout_s is None else timeout_s
        return write_lock(self.settings.kbs_dir / validate_kb_name(name), name, timeout, on_wait)

    def open(self, settings: Settings, model_id: Callable[[], str]) -> KbAccess:
        return LocalAccess(settings, self, model_id)

    def problems(self) -> dict[str, str]:
        return {}


class LocalAccess(KbAccess):
    _store_key: str | None = None  # the manifest's content key when the store was opened

    def _open_manifest(self) -> Manifest:
        from kb.ingest.manifest import SqliteManifest

        kb_dir = self.settings.kb_dir
        return SqliteManifest(kb_dir / MANIFEST, readonly=kb_dir.exists() and not os.access(kb_dir, os.W_OK))

    def _open_store(self) -> VectorStore:
        from kb.store import guard
        from kb.store.local import LocalChromaStore

        self._store_key = self.manifest.content_key()  # before opening: a write meanwhile means reopen
        guard.before_read(self.settings.kb_dir, self.name)
        return LocalChromaStore(self.settings.kb_dir / "chroma", self.name)

    @property
    def read_only(self) -> bool:
        kb_dir = self.settings.kb_dir
        return kb_dir.exists() and not os.access(kb_dir, os.W_OK)

    def _store_is_stale(self) -> bool:
        """Whether another process committed a write since the store was opened. Not when
        this process is the writer: its client sees its own writes."""
        return "store" in self.__dict__ and self._writer is None and self.manifest.content_key() != self._store_key

    def refresh(self) -> None:
        with self._gate.shared():
            stale = self._store_is_stale()
        if stale:
            with self._gate.exclusive():
                if self._store_is_stale():
                    drop(self, "store").close()

    def _after_write(self, held: Held) -> None:
        if "store" in self.__dict__:
            self._store_key = self.manifest.content_key()

    def _begin_mark(self) -> bool:
        from kb.store import guard

        return guard.begin_write(self.settings.kb_dir, self.name)

    def _end_mark(self) -> None:
        from kb.store import guard

        guard.end_write(self.settings.kb_dir)

    def index_health(self) -> tuple[list[str] | None, str | None]:
        from kb.store import COLLECTION_PREFIX
        from kb.store.guard import probe_index

        return probe_index(self.settings.kb_dir / "chroma", COLLECTION_PREFIX + self.name)

    @contextlib.contextmanager
    def _planning(self) -> Iterator[Manifest | None]:
        from kb.ingest.manifest import SqliteManifest

        if not self.storage.exists(self.name):
            yield None
            return
        manifest = SqliteManifest(self.settings.kb_dir / MANIFEST, untouched=True)
        try:
            yield manifest
        finally:
            manifest.close()

    def planning_manifest(self) -> AbstractContextManager[Manifest | None]:
        return self._planning()
