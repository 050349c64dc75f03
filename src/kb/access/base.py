"""`KbAccess`, the part both storages share, and the `Storage` seam (see the package docstring)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

from kb.concurrency import Gate, drop, lazy
from kb.config import Settings
from kb.errors import ConfigError, EmptyKb, LockTimeout

if TYPE_CHECKING:
    from kb.ingest.manifest import Manifest
    from kb.locking import Held
    from kb.retrieval.keyword import RareTerms
    from kb.store import VectorStore

OnWait = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class Storage(Protocol):
    """Where the knowledge bases of a home live: the catalogue, the write lock, and access
    to one of them."""

    def names(self) -> list[str]: ...
    def exists(self, name: str) -> bool: ...
    def require(self, name: str) -> None: ...
    def delete(self, name: str, on_wait: OnWait = _quiet) -> None: ...
    def write_lock(
        self, name: str, on_wait: OnWait = _quiet, timeout_s: float | None = None
    ) -> AbstractContextManager[Held]: ...
    def open(self, settings: Settings, model_id: Callable[[], str]) -> KbAccess: ...
    def problems(self) -> dict[str, str]: ...


class KbAccess:
    """One knowledge base's adapters and consistency rules. Subclasses say how the adapters
    open, how another writer's work becomes visible, and how a write is marked."""

    def __init__(self, settings: Settings, storage: Storage, model_id: Callable[[], str]) -> None:
        self.settings = settings
        self.storage = storage
        self._model_id = model_id
        self.on_wait: OnWait = _quiet  # "waiting for the lock"
        self._gate = Gate()
        self._writer: threading.Thread | None = None  # the thread of this process holding the write lock
        self._in_write_mark = False

    @property
    def name(self) -> str:
        return self.settings.kb

    # -- adapters, opened on first use ----------------------------------------------------
    @lazy
    def manifest(self) -> Manifest:
        return self._open_manifest()

    @lazy
    def store(self) -> VectorStore:
        return self._open_store()

    @lazy
    def rare_terms(self) -> RareTerms:
        from kb.retrieval.keyword import RareTerms

        return RareTerms(lambda word, cap: self.manifest.keyword_count(word, cap))

    def _open_manifest(self) -> Manifest:
        raise NotImplementedError

    def _open_store(self) -> VectorStore:
        raise NotImplementedError

    def drop_adapters(self) -> None:
        """Closes the manifest and store; the next use opens them afresh (a rebuild). The
        caller holds the gate exclusively (`maintaining`)."""
        for name in ("manifest", "store"):
            adapter = drop(self, name)
            if adapter is not None:
                adapter.close()

    # -- checks -----------------------------------------------------------------------------
    def check_model(self, manifest: Manifest | None = None) -> None:
        manifest = manifest or self.manifest
        built_with = manifest.get_meta("model")
        configured = self._model_id()
        if built_with and built_with != configured:
            self._mixing(built_with, _int(manifest.get_meta("dimension")), configured, None)

    def check_dimension(self, dimension: int, record: bool = False) -> None:
        """Vectors of `dimension` may join (`record`: the caller holds the write lock, and a
        KB without a recorded dimension takes this one) or query this knowledge base."""
        built = _int(self.manifest.get_meta("dimension"))
        if built is None:
            if record:
                self.manifest.set_meta("dimension", str(dimension))
            return
        if built != dimension:
            configured = self._model_id()
            self._mixing(self.manifest.get_meta("model") or configured, built, configured, dimension)

    def _mixing(self, built_with: str, built_dim: int | None, configured: str, dimension: int | None) -> None:
        from kb.embedding.identity import describe

        raise ConfigError(
            f"knowledge base {self.name!r} was built with the embedder {describe(built_with, built_dim)}, but the "
            f"configured embedder is {describe(configured, dimension)}: their vectors do not mix",
            remedy="model_changed", kb=self.name, built_with=built_with, configured=configured,
            built_dimension=built_dim, configured_dimension=dimension,
        )  # fmt: skip

    def require_content(self) -> None:
        if not self.manifest.has_documents():
            raise EmptyKb(f"knowledge base {self.name!r} is empty", remedy="add_documents", kb=self.name)

    @property
    def read_only(self) -> bool:
        """Whether nothing may write this knowledge base (a read-only KB_HOME)."""
        return False

    # -- what other writers did ---------------------------------------------------------------
    def refresh(self) -> None:
        """Makes what other processes committed visible; called outside the gate."""

    def _after_write(self, held: Held) -> None:
        """A write of this process ends (the caller still holds the lock and the gate)."""

    def _before_write(self, held: Held) -> None:
        """A write of this process begins, under the lock and the gate."""

    def _begin_mark(self) -> bool:
        raise NotImplementedError

    def _end_mark(self) -> None:
        raise NotImplementedError

    # -- the three ways in -----------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[None]:
        self.storage.require(self.name)
        self.refresh()
        with self._gate.shared():
            yield

    def writing(
        self, lock_timeout_s: float | None = None, on_wait: OnWait | None = None
    ) -> AbstractContextManager[None]:
        """The write lock, then the gate: a thread waiting for the lock holds no gate, so a
        rebuild never waits for it."""
        return self._writer_of(self._gate.shared, lock_timeout_s, on_wait)

    def maintaining(self) -> AbstractContextManager[None]:
        """The write lock and the gate exclusively: no operation runs meanwhile, so files may
        move under it (kb doctor's rebuild)."""
        return self._writer_of(self._gate.exclusive, None, None)

    @contextmanager
    def _writer_of(
        self, gate: Callable[[], AbstractContextManager[None]], lock_timeout_s: float | None, on_wait: OnWait | None
    ) -> Iterator[None]:
        with self.storage.write_lock(self.name, on_wait or self.on_wait, lock_timeout_s) as held:
            self.refresh()  # include what the previous writer (another process) committed
            with gate():
                self._writer = threading.current_thread()
                self._before_write(held)
                try:
                    yield
                finally:
                    self._after_write(held)
                    self._writer = None

    @contextmanager
    def write_mark(self) -> Iterator[bool]:
        """Marks the index as being written for the duration (see store/guard.py); the
        caller holds the write lock. The mark stays if the write does not return. Yields
        whether the previous write was interrupted."""
        if self._in_write_mark:  # nested: a repair re-ingesting inside its own write
            yield True  # ...after damage: treat the store as possibly ahead of the manifest
            return
        interrupted = self._begin_mark()
        self._in_write_mark = True
        try:
            yield interrupted
        finally:
            self._in_write_mark = False
        self._end_mark()  # not reached when the body raised: the next writer then knows

    # -- the keyword index -------------------------------------------------------------------
    def build_keyword_index(self) -> int:
        """Rebuilds the keyword index from the chunk texts in the vector store, without
        re-embedding; the caller holds the write lock. Returns the chunks indexed."""
        ids = [i for record in self.manifest.all() for i in record.chunk_ids]
        chunks = self.store.stored(ids) if ids else []
        self.manifest.rebuild_keyword_index(chunks)
        return len(chunks)

    def ensure_keyword_index(self) -> None:
        """Builds the keyword index of a KB from before it existed, on its first hybrid or
        keyword search. Skipped (the search falls back to dense) when the home is read-only
        or another process is writing: a search never waits for a writer."""
        with self._gate.shared():  # the manifest is closed and reopened under the gate (close, rebuild)
            if not self._may_open_manifest() or self.manifest.readonly or self.manifest.keyword_ready():
                return
        try:
            with self.writing(lock_timeout_s=0, on_wait=_quiet):
                if not self.manifest.keyword_ready():
                    self.build_keyword_index()
        except LockTimeout:
            return

    def _may_open_manifest(self) -> bool:
        """Whether a search may open the manifest before `reading` has checked that the KB
        exists: opening it where it is missing would create the KB."""
        return self.settings.kb_dir.exists()

    # -- kb doctor ----------------------------------------------------------------------------
    def index_health(self) -> tuple[list[str] | None, str | None]:
        """(every chunk id in the store, None), or (None, why the index cannot be read)."""
        raise NotImplementedError

    def planning_manifest(self) -> AbstractContextManager[Manifest | None]:
        """The manifest as a dry run may read it, writing nothing: None for a KB that does
        not exist (and stays so)."""
        raise NotImplementedError

    def close(self) -> None:
        """Waits for running operations, then closes the adapters."""
        with self._gate.exclusive():
            self.drop_adapters()
