"""Knowledge bases shared by several kb instances: vectors on a Chroma server (`store.url`),
the manifest's truth, the catalogue and the write lock (a lease) on Redis (`state.url`).

Each instance keeps a mirror of a KB's manifest under its own KB_HOME
(ingest/shared_manifest.py); a reader brings it up to date when the shared records moved. A
server's client caches nothing, so the store itself is never stale.

A read operation (a search, an ask) asks Redis once: `reading` takes the KB's catalogue entry
and shared meta in one round trip and pins them for the operation's checks, in its own thread
and until it ends; the next operation reads again, so what another instance wrote or deleted
meanwhile is seen by the next one. A writer never reads a pin.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from kb.access.base import KbAccess, OnWait, _quiet
from kb.access.local import MANIFEST, not_found
from kb.config import Settings
from kb.errors import KbError

if TYPE_CHECKING:
    import redis

    from kb.ingest.manifest import Manifest
    from kb.ingest.shared_manifest import MirroredManifest, SharedMeta
    from kb.locking import Held
    from kb.store import VectorStore


class SharedStorage:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        assert settings.store.url is not None
        self.settings = settings
        self.url: str = settings.store.url
        self.client = client

    def names(self) -> list[str]:
        from kb.ingest import shared_manifest

        return shared_manifest.names(self.client)

    def exists(self, name: str) -> bool:
        from kb.ingest import shared_manifest

        return shared_manifest.exists(self.client, name)

    def require(self, name: str) -> None:
        if not self.exists(name):
            raise not_found(name, self.settings.home, self.names())

    def delete(self, name: str, on_wait: OnWait = _quiet) -> None:
        """The KB leaves the catalogue first, so no instance starts on it; then its vectors
        go, then this instance's mirror."""
        from kb.ingest.shared_manifest import drop_shared
        from kb.store.server import delete_remote

        self.require(name)
        with self.write_lock(name, on_wait):
            drop_shared(self.client, name)
            delete_remote(self.url, name)
        mirror = self.settings.kbs_dir / name
        if mirror.exists():
            trash = self.settings.kbs_dir / f".deleted-{name}-{time.time_ns()}"
            mirror.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def write_lock(
        self, name: str, on_wait: OnWait = _quiet, timeout_s: float | None = None
    ) -> AbstractContextManager[Held]:
        from kb.locking import shared_write_lock

        timeout = self.settings.lock_timeout_s if timeout_s is None else timeout_s
        return shared_write_lock(self.client, name, timeout, self.settings.state.lock_lease_s, on_wait)

    def open(self, settings: Settings, model_id: Callable[[], str]) -> KbAccess:
        return SharedAccess(settings, self, model_id)

    def problems(self) -> dict[str, str]:
        from kb.store.server import ping_server

        try:
            ping_server(self.url)
        except KbError as exc:
            return {"store": str(exc)}
        return {}


class SharedAccess(KbAccess):
    storage: SharedStorage

    def __init__(self, settings: Settings, storage: SharedStorage, model_id: Callable[[], str]) -> None:
        super().__init__(settings, storage, model_id)
        self._pin = threading.local()  # .meta: the SharedMeta of this thread's read operation

    def _pinned(self) -> SharedMeta | None:
        meta: SharedMeta | None = getattr(self._pin, "meta", None)
        return meta

    @property
    def mirrored(self) -> MirroredManifest:
        return self.manifest  # type: ignore[return-value]  # what _open_manifest opened

    def _open_manifest(self) -> Manifest:
        from kb.ingest.shared_manifest import MirroredManifest

        return MirroredManifest(self.settings.kb_dir / MANIFEST, self.storage.client, self.name, self._pinned)

    def _open_store(self) -> VectorStore:
        from kb.store.server import ServerChromaStore

        return ServerChromaStore(self.storage.url, self.name)

    def _may_open_manifest(self) -> bool:
        # An old mirror outlives a KB that another instance deleted; opening its manifest
        # would list the KB again. An open manifest costs no round trip to check.
        return super()._may_open_manifest() and ("manifest" in self.__dict__ or self.storage.exists(self.name))

    def refresh(self) -> None:
        """Brings this instance's mirror up to date with the shared records."""
        with self._gate.shared():
            if not self.mirrored.is_synced():
                self.mirrored.sync(lambda ids: self.store.stored(ids) if ids else [])

    def _before_write(self, held: Held) -> None:
        self.mirrored.fence = held.check  # a lease lost on the way stops the next commit

    def _after_write(self, held: Held) -> None:
        self.mirrored.unfence()
        with contextlib.suppress(KbError):  # a lost lease: the next read syncs
            held.check()  # the mirror has every commit only while they were all ours
            self.mirrored.mark_synced()

    def _begin_mark(self) -> bool:
        return self.mirrored.begin_write()

    def _end_mark(self) -> None:
        self.mirrored.end_write()

    def index_health(self) -> tuple[list[str] | None, str | None]:
        """A Chroma server looks after its own index; unreachable is an error, not damage."""
        return sorted(self.store.ids()), None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """As KbAccess.reading, with one read of Redis for the whole operation: whether the
        KB exists, whether the mirror is in step, and the checks' model, dimension and
        content key all come from it (see read_meta)."""
        from kb.ingest.shared_manifest import read_meta

        meta = read_meta(self.storage.client, self.name)
        if not meta.listed:
            raise not_found(self.name, self.settings.home, self.storage.names())
        outer = self._pinned()
        self._pin.meta = meta
        try:
            self.refresh()
            with self._gate.shared():
                yield
        finally:
            if self._pinned() is meta:  # else a write within cleared it: the reads after it stay fresh
                self._pin.meta = outer

    @contextlib.contextmanager
    def _writer_of(
        self, gate: Callable[[], AbstractContextManager[None]], lock_timeout_s: float | None, on_wait: OnWait | None
    ) -> Iterator[None]:
        # A writer reads Redis's values, and so does the rest of a read it is nested in: the
        # write may have moved them.
        self._pin.meta = None
        with super()._writer_of(gate, lock_timeout_s, on_wait):
            yield

    @contextlib.contextmanager
    def _planning(self) -> Iterator[Manifest | None]:
        if not self.storage.exists(self.name):
            yield None
            return
        self.refresh()  # this instance's mirror, brought up to date; the shared KB is not written
        yield self.manifest

    def planning_manifest(self) -> AbstractContextManager[Manifest | None]:
        return self._planning()
