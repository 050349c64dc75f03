"""The ingest pipeline: discover → plan per file → read → chunk → embed → store → commit.

Files whose size, mtime, chunker and model match the manifest are skipped without being
read; if only the mtime moved, the content hash decides. Chunks are embedded in batches
that span files, and each file is committed (store first, then manifest) as soon as its
batch is stored, so an interrupted run keeps everything finished before the interruption.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from kb.documents import Chunk
from kb.errors import IngestError
from kb.ingest import readers
from kb.ingest.chunking import Chunker
from kb.ingest.discovery import discover
from kb.ingest.manifest import FileRecord, Manifest

EMBED_BATCH = 128


class Progress(Protocol):
    def start(self, total_files: int) -> None: ...
    def advance(self, path: str, chunks: int) -> None: ...
    def finish(self) -> None: ...


class _Silent:
    def start(self, total_files: int) -> None: ...
    def advance(self, path: str, chunks: int) -> None: ...
    def finish(self) -> None: ...


@dataclass
class IngestReport:
    files_seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[dict] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    skipped: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
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


class IngestPipeline:
    """Runs one ingest. `store` and `embed` are reached through callables so that a run
    with nothing to do never opens Chroma or loads the model."""

    def __init__(self, manifest: Manifest, store: Callable, embed: Callable, chunker: Callable[[], Chunker],
                 model_id: str, progress: Progress | None = None) -> None:
        self.manifest = manifest
        self._store = store
        self._embed = embed
        self._chunker = chunker
        self.model_id = model_id
        self.progress = progress or _Silent()
        self.report = IngestReport()
        self._pending: list[_Pending] = []

    def run(self, paths: list[Path], include=None, exclude=None, hidden: bool = False) -> IngestReport:
        started = time.perf_counter()
        found = discover(paths, include, exclude, hidden)
        self.report.files_seen = len(found.files)
        self.report.skipped = [{"path": p, "reason": r} for p, r in found.skipped]
        self.report.failed = [{"path": p, "reason": r} for p, r in found.failed]
        self.progress.start(len(found.files))
        seen = set()
        for path in found.files:
            seen.add(str(path))
            try:
                self._plan(path)
            except IngestError as exc:
                self.report.failed.append({"path": str(path), "reason": str(exc)})
                self.progress.advance(str(path), 0)
            if sum(len(p.fresh) for p in self._pending) >= EMBED_BATCH:
                self._flush()
        self._flush()
        for root in found.roots:
            for source in self.manifest.sources_under(str(root)):
                if source not in seen:
                    self._remove(source)
        self.progress.finish()
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def _plan(self, path: Path) -> None:
        source = str(path)
        try:
            st = path.stat()
        except OSError as exc:
            raise IngestError(f"cannot stat ({exc.strerror})") from exc
        old = self.manifest.get(source)
        current = old is not None and old.model == self.model_id and old.chunker == self._chunker().version
        if current and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            self._unchanged(source)
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read ({exc.strerror})") from exc
        digest = hashlib.sha256(data).hexdigest()
        if current and old.sha256 == digest:
            self.manifest.touch(source, st.st_size, st.st_mtime_ns)
            self._unchanged(source)
            return
        doc = readers.read(path, data)
        for warning in doc.warnings:
            self.report.warnings.append({"path": source, "warning": warning})
        chunks = self._chunker().chunk(doc)
        if not chunks:
            raise IngestError("no text to index" + (f" ({'; '.join(doc.warnings)})" if doc.warnings else ""))
        old_ids = set(old.chunk_ids) if old else set()
        new_ids = {c.id for c in chunks}
        record = FileRecord(source, st.st_size, st.st_mtime_ns, digest, self._chunker().version, self.model_id,
                            [c.id for c in chunks], doc.warnings, 0.0)
        self._pending.append(_Pending(path, record, chunks, [c for c in chunks if c.id not in old_ids],
                                      sorted(old_ids - new_ids), old is not None))

    def _unchanged(self, source: str) -> None:
        self.report.unchanged += 1
        self.progress.advance(source, 0)

    def _flush(self) -> None:
        if not self._pending:
            return
        fresh = [c for p in self._pending for c in p.fresh]
        vectors = self._embed([c.embedding_text() for c in fresh]) if fresh else None
        store = self._store()
        offset = 0
        for item in self._pending:
            n = len(item.fresh)
            if item.stale:
                store.delete(item.stale)
            if n:
                store.add(item.fresh, vectors[offset : offset + n])
            offset += n
            item.record.ingested_at = time.time()
            self.manifest.put(item.record)
            self.manifest.bump_version()
            self.report.updated += item.is_update
            self.report.added += not item.is_update
            self.report.chunks_added += n
            self.report.chunks_removed += len(item.stale)
            self.progress.advance(str(item.path), len(item.chunks))
        self._pending = []

    def _remove(self, source: str) -> None:
        record = self.manifest.get(source)
        if record is None:
            return
        if record.chunk_ids:
            self._store().delete(record.chunk_ids)
        self.manifest.delete(source)
        self.manifest.bump_version()
        self.report.removed += 1
        self.report.chunks_removed += len(record.chunk_ids)
