"""The ingest pipeline: discover → plan per file → read → chunk → embed → store → commit.

Files whose size, mtime, chunker and model match the manifest are skipped without being
read; if only the mtime moved, the content hash decides. Files to read are read, parsed
and chunked on a read-ahead thread while the encoder works. Chunks are embedded in batches
that span files, and each file is committed (store first, then manifest) as soon as its
batch is stored, so an interrupted run keeps everything finished before the interruption.

A part of a split background job (jobs/runner.py) takes the two halves apart: `prepare`
reads, chunks and embeds its files without the write lock, so workers embed side by side,
and `commit` stores them under it, checking each file against the manifest as it is then.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kb import logs
from kb.documents import Chunk
from kb.errors import IngestError
from kb.ingest import readers
from kb.ingest.chunking import Chunker
from kb.ingest.discovery import Found, discover, is_gone
from kb.ingest.manifest import FileRecord, Manifest
from kb.options import IngestScope

if TYPE_CHECKING:
    from kb.store import VectorStore

READ_AHEAD = 64  # files parsed ahead of the encoder


class Progress(Protocol):
    """Files are counted, but work is measured in bytes of the files that must be read:
    `planned` gives the total once the stat pass knows which files changed, and `worked`
    reports parts of it as they are done (a big file's share as each batch of its chunks
    is stored), so an ETA by work stays meaningful when one file dwarfs the rest."""

    def start(self, total_files: int) -> None: ...
    def planned(self, work_bytes: int) -> None: ...  # bytes of the files to read and embed
    def advance(self, path: str, chunks: int) -> None: ...  # a file is done (committed or skipped)
    def embedded(self, chunks: int) -> None: ...  # chunks encoded and stored, as each batch lands
    def worked(self, work_bytes: float) -> None: ...  # this much of the planned work is done
    def finish(self) -> None: ...


class _Silent:
    def start(self, total_files: int) -> None: ...
    def planned(self, work_bytes: int) -> None: ...
    def advance(self, path: str, chunks: int) -> None: ...
    def embedded(self, chunks: int) -> None: ...
    def worked(self, work_bytes: float) -> None: ...
    def finish(self) -> None: ...


@dataclass
class IngestReport:
    files_seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    removed_sources: list[str] = field(default_factory=list)
    chunks_embedded: int = 0  # encoded in this run: less than chunks_added when a killed run's batches are reused
    held: list[str] = field(default_factory=list)  # left as they were this time (watch: still being written)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class _Pending:
    path: Path
    record: FileRecord
    chunks: list[Chunk]
    fresh: list[Chunk]  # chunks whose id is not in the store yet
    stale: list[str]  # ids of the previous version that are gone
    is_update: bool
    known: frozenset[str] = frozenset()  # the previous version's ids, when planned


@dataclass
class Embedded:
    """A part's files, read, chunked and embedded outside the write lock, for `commit`."""

    pending: list[_Pending]
    vectors: dict[str, Any]  # chunk id -> vector
    touched: list[tuple[str, int, int]]  # (source, size, mtime_ns): the content is unchanged


@dataclass
class _Prepared:
    digest: str
    chunks: list[Chunk]
    warnings: list[str]


def _prepare(path: Path, old_digest: str | None, chunker: Chunker) -> _Prepared:
    """Read, parse and chunk one file; pure, so it runs on the read-ahead thread."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read ({exc.strerror})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest == old_digest:
        return _Prepared(digest, [], [])
    try:
        with logs.capture() as said:  # a parser's log lines belong to this file's report
            doc = readers.read(path, data)
            chunks = chunker.chunk(doc)
    except IngestError:
        raise
    except Exception as exc:  # one malformed file must not end a run over thousands
        raise IngestError(f"could not be parsed ({type(exc).__name__}: {exc})") from exc
    doc.warnings += logs.summarise(said)
    if not chunks:
        raise IngestError("no text to index" + (f" ({'; '.join(doc.warnings)})" if doc.warnings else ""))
    return _Prepared(digest, chunks, doc.warnings)


# A file to read: its path, its stat and its record from the last run (None if new).
_ToRead = tuple[Path, os.stat_result, FileRecord | None]


def _read_ahead(
    items: list[_ToRead], chunker: Chunker, depth: int = READ_AHEAD
) -> Iterator[tuple[_ToRead, Callable[[], _Prepared]]]:
    """Yields (item, result) in order, reading and parsing up to `depth` files ahead on one
    thread while the caller encodes: torch releases the GIL, so parsing overlaps it.
    `result()` returns the _Prepared or raises the file's IngestError."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-read") as pool:
        window: deque[tuple[_ToRead, Future[_Prepared]]] = deque()
        for item in items:
            path, _, old = item
            window.append((item, pool.submit(_prepare, path, old.sha256 if old else None, chunker)))
            if len(window) > depth:
                done, future = window.popleft()
                yield done, future.result
        while window:
            done, future = window.popleft()
            yield done, future.result


def to_remove(found: Found, manifest: Manifest, prune: bool) -> list[str]:
    """Documents under the walked folders that this run did not see. Only those whose file
    is gone are removed, unless `prune` asks to mirror the filtered view too; a folder that
    could not be listed keeps its documents either way."""
    seen = {str(path) for path in found.files + found.held} | {path for path, _ in found.failed}
    unlisted = tuple(path.rstrip("/") + "/" for path, _ in found.failed)
    out = []
    for root in found.roots:
        for source in manifest.sources_under(str(root)):
            if source in seen or source.startswith(unlisted):
                continue
            if is_gone(source) or prune:
                out.append(source)
    return out


def _stacked(rows: list[Any]) -> Any:
    import numpy as np

    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def _weights(pending: list[_Pending]) -> list[float]:
    """Each new chunk's share of its file's bytes, aligned with the pending files' fresh
    chunks: storing a batch completes that much of the planned work."""
    return [p.record.size / len(p.fresh) for p in pending for _ in p.fresh]


class IngestPipeline:
    """Runs one ingest. `store` and `embed` are reached through callables so that a run
    with nothing to do never opens Chroma or loads the model."""

    def __init__(
        self,
        manifest: Manifest,
        store: Callable[[], VectorStore],
        embed: Callable[[list[str]], Any],
        chunker: Callable[[], Chunker],
        model_id: str,
        progress: Progress | None = None,
        batch: int = 1024,
        recovering: bool = True,
    ) -> None:
        self.manifest = manifest
        self._store = store
        self._embed = embed
        self._chunker = chunker
        self.model_id = model_id
        self.progress = progress or _Silent()
        self.batch = batch  # chunks per encode call and commit: larger batches pad less
        self.recovering = recovering  # the last write was interrupted: the store may hold more than the manifest
        self.report = IngestReport()
        self._pending: list[_Pending] = []

    def run(self, scope: IngestScope, hold: frozenset[str] = frozenset()) -> IngestReport:
        """`hold`: files to leave as they are this time, neither read nor removed (a watched
        file still being written)."""
        started = time.perf_counter()
        found = discover(scope)
        if hold:
            found.held = [p for p in found.files if str(p) in hold]
            found.files = [p for p in found.files if str(p) not in hold]
            self.report.held = [str(p) for p in found.held]
        self.report.files_seen = len(found.files)
        self.report.skipped = [{"path": p, "reason": r} for p, r in found.skipped]
        self.report.failed = [{"path": p, "reason": r} for p, r in found.failed]
        self.progress.start(len(found.files))
        to_read = self.check_all(found.files)
        self.progress.planned(sum(st.st_size for _, st, _ in to_read))
        chunker = self._chunker()
        for (path, st, old), prepared in _read_ahead(to_read, chunker):
            try:
                self._plan(path, st, old, prepared())
            except IngestError as exc:
                self._failed(str(path), exc)
                self.progress.worked(st.st_size)
            if sum(len(p.fresh) for p in self._pending) >= self.batch:
                self._flush()
        self._flush()
        for source in to_remove(found, self.manifest, scope.prune):
            self.remove(source)
        self.progress.finish()
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def check_all(self, paths: list[Path]) -> list[_ToRead]:
        """The files to read among `paths`; the others are counted unchanged or failed."""
        to_read = []
        for path in paths:
            try:
                item = self._check(path)
            except IngestError as exc:
                self._failed(str(path), exc)
                continue
            if item is not None:
                to_read.append(item)
        return to_read

    def _check(self, path: Path) -> _ToRead | None:
        """Stat and manifest only: None if the file is known unchanged, else what reading needs."""
        try:
            st = path.stat()
        except OSError as exc:
            raise IngestError(f"cannot stat ({exc.strerror})") from exc
        old = self.manifest.get(str(path))
        if old is not None and (old.model != self.model_id or old.chunker != self._chunker().version):
            return path, st, replace(old, sha256="")  # re-chunk and re-embed, delete the old chunks
        if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            self._unchanged(str(path))
            return None
        return path, st, old

    def _plan(self, path: Path, st: os.stat_result, old: FileRecord | None, prepared: _Prepared) -> None:
        source = str(path)
        if old is not None and old.sha256 == prepared.digest:
            self.manifest.touch(source, st.st_size, st.st_mtime_ns)
            self._unchanged(source)
            self.progress.worked(st.st_size)
            return
        for warning in prepared.warnings:
            self.report.warnings.append({"path": source, "warning": warning})
        chunks = prepared.chunks
        old_ids = set(old.chunk_ids) if old else set()
        new_ids = {c.id for c in chunks}
        record = FileRecord(
            source,
            st.st_size,
            st.st_mtime_ns,
            prepared.digest,
            self._chunker().version,
            self.model_id,
            [c.id for c in chunks],
            prepared.warnings,
            0.0,
        )
        self._pending.append(
            _Pending(
                path,
                record,
                chunks,
                [c for c in chunks if c.id not in old_ids],
                sorted(old_ids - new_ids),
                old is not None,
                frozenset(old_ids),
            )
        )

    # -- a part of a split job -----------------------------------------------------------------
    def prepare(self, paths: list[Path]) -> Embedded:
        """Reads, chunks and embeds `paths` against the manifest as it is now, writing
        nothing: the caller need not hold the write lock."""
        self.progress.start(len(paths))
        to_read = self.check_all(paths)
        self.progress.planned(sum(st.st_size for _, st, _ in to_read))
        touched = []
        for (path, st, old), result in _read_ahead(to_read, self._chunker()):
            try:
                prepared = result()
            except IngestError as exc:
                self._failed(str(path), exc)
                self.progress.worked(st.st_size)
                continue
            if old is not None and old.sha256 == prepared.digest:
                touched.append((str(path), st.st_size, st.st_mtime_ns))
                self._unchanged(str(path))
                self.progress.worked(st.st_size)
                continue
            self._plan(path, st, old, prepared)
        pending, self._pending = self._pending, []
        fresh = [c for p in pending for c in p.fresh]
        weight = _weights(pending)
        self.progress.worked(sum(p.record.size for p in pending if not p.fresh))
        vectors: dict[str, Any] = {}
        for start in range(0, len(fresh), self.batch):
            part = fresh[start : start + self.batch]
            vectors.update(zip([c.id for c in part], self._embed([c.embedding_text() for c in part]), strict=True))
            self.report.chunks_embedded += len(part)
            self.progress.embedded(len(part))
            self.progress.worked(sum(weight[start : start + self.batch]))
        return Embedded(pending, vectors, touched)

    def commit(self, part: Embedded) -> IngestReport:
        """Stores a prepared part and records it in the manifest; the caller holds the write
        lock. A file whose record moved since `prepare` (another job committed it) is
        stored against the record as it is now: chunks it lacks are embedded here, and the
        same content committed meanwhile is left as it is."""
        store = self._store()
        for source, size, mtime_ns in part.touched:
            if self.manifest.get(source) is not None:
                self.manifest.touch(source, size, mtime_ns)
        ready: list[_Pending] = []
        for item in part.pending:
            current = self.manifest.get(item.record.source)
            known = frozenset(current.chunk_ids) if current else frozenset()
            if current is not None and (current.sha256, current.model, current.chunker) == (
                item.record.sha256, item.record.model, item.record.chunker
            ):  # fmt: skip
                self._unchanged(item.record.source)
                continue
            if known != item.known:
                new_ids = {c.id for c in item.chunks}
                item = replace(item, fresh=[c for c in item.chunks if c.id not in known],
                               stale=sorted(known - new_ids), is_update=current is not None, known=known)  # fmt: skip
            ready.append(item)
        fresh = [c for p in ready for c in p.fresh]
        missing = [c for c in fresh if c.id not in part.vectors]
        if missing:
            part.vectors.update(zip([c.id for c in missing], self._embed([c.embedding_text() for c in missing]),
                                    strict=True))  # fmt: skip
            self.report.chunks_embedded += len(missing)
        for start in range(0, len(fresh), self.batch):
            chunks = fresh[start : start + self.batch]
            store.add(chunks, _stacked([part.vectors[c.id] for c in chunks]))
        stale = [i for p in ready for i in p.stale]
        if stale:
            store.delete(stale)
        self._record(ready)
        self.manifest.bump_version()
        self.progress.finish()
        return self.report

    def _failed(self, source: str, exc: Exception) -> None:
        self.report.failed.append({"path": source, "reason": str(exc)})
        self.progress.advance(source, 0)

    def _unchanged(self, source: str) -> None:
        self.report.unchanged += 1
        self.progress.advance(source, 0)

    def _flush(self) -> None:
        """Embeds the pending files' new chunks and stores them, at most `batch` chunks per
        encode and write (per-file writes cost Chroma ~2 ms a call; one write per batch),
        then commits each file to the manifest. A file larger than a batch is stored a batch
        at a time and committed once all of it is stored, so memory stays bounded by the
        batch and a kill loses at most one batch: after a crash (`recovering`) chunks already
        in the store are not embedded again, and a big file resumes where it stopped.

        The write is not overlapped with the next batch's encoding: on 2 cores the encoder
        keeps both busy, and a writer thread measured no faster."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        store = self._store()
        fresh = [c for p in pending for c in p.fresh]
        weight = _weights(pending)
        self.progress.worked(sum(p.record.size for p in pending if not p.fresh))
        if self.recovering and fresh:
            stored = store.existing([c.id for c in fresh])
            self.progress.worked(sum(weight[i] for i, c in enumerate(fresh) if c.id in stored))
            weight = [weight[i] for i, c in enumerate(fresh) if c.id not in stored]
            fresh = [c for c in fresh if c.id not in stored]
        for start in range(0, len(fresh), self.batch):
            part = fresh[start : start + self.batch]
            store.add(part, self._embed([c.embedding_text() for c in part]))
            self.report.chunks_embedded += len(part)
            self.progress.embedded(len(part))
            self.progress.worked(sum(weight[start : start + self.batch]))
        # Old chunks go once the new ones are stored: when embedding fails (a service down),
        # the documents keep their previous chunks, still searchable. (Stale and fresh ids
        # never overlap, so the order is otherwise free.)
        stale = [i for p in pending for i in p.stale]
        if stale:
            store.delete(stale)
        self._record(pending)
        self.manifest.bump_version()

    def _record(self, pending: list[_Pending]) -> None:
        """Commits stored files to the manifest."""
        now = time.time()
        for item in pending:
            item.record.ingested_at = now
            self.manifest.put(item.record, item.chunks)
            self.report.updated += item.is_update
            self.report.added += not item.is_update
            self.report.chunks_added += len(item.fresh)
            self.report.chunks_removed += len(item.stale)
            self.progress.advance(str(item.path), len(item.chunks))

    def remove(self, source: str) -> None:
        """Removes a document from the store and the manifest, if it is there."""
        record = self.manifest.get(source)
        if record is None:
            return
        if record.chunk_ids:
            self._store().delete(record.chunk_ids)
        self.manifest.delete(source)
        self.manifest.bump_version()
        self.report.removed += 1
        self.report.removed_sources.append(source)
        self.report.chunks_removed += len(record.chunk_ids)
