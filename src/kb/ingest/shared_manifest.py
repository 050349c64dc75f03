"""The manifest of a KB shared by several kb instances: Redis holds the truth, each instance a mirror.

With `store.url` and `state.url` set, instances on different machines write one KB. What
they must agree on lives in Redis: the file records (what is ingested, with which chunk
ids), the model the KB was built with, and its content key (generation and version), which
moves with every committed write and keys the answer cache on every instance.

Each instance keeps a mirror of it in the ordinary SQLite manifest under its own KB_HOME,
with the chunk texts and the FTS5 keyword index, so search, hybrid ranking and `kb list`
run locally as they do without Redis. The keyword index is therefore rebuilt per instance,
from the Chroma server's chunk texts, not shared: Redis (Debian's, without modules) has no
full-text search, Chroma's server has none for single-node deployments (chromadb 1.5.9),
and a bm25 over the whole corpus needs the corpus's statistics, which a local index keeps
for free. `sync` brings the mirror up to date when the shared records have moved: it
compares file records and fetches the texts of changed files only, in a few large reads, so
its cost follows what changed, not the KB's size (the first sync of a new instance fetches
everything: 1.4 s for 16,000 chunks on loopback, benchmarks/mirror_sync.py).

A writer holds the KB's write lock (a lease on Redis, see locking.py) and commits each
file to its mirror, then to Redis: a record in Redis always has its chunks in the store.

A reader asks Redis once per operation: `read_meta` takes whether the catalogue lists the KB
and every shared meta field a search checks in one round trip, and the manifest answers from
that `SharedMeta` while the reader pins it (access/shared.py). Without a pin (writers, and
reads outside an operation) each read goes to Redis.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kb.documents import Chunk, StoredChunk
from kb.ingest.manifest import FileRecord, SqliteManifest
from kb.state import key, text, translated

if TYPE_CHECKING:
    import redis

# Meta keys every instance must agree on; the rest (keyword_index, synced) describe the mirror.
_SHARED_META = ("model", "dimension", "generation", "content_version")
_RECORDS_KEY = ("generation", "content_version", "records")
_PINNED = (*_SHARED_META, "records")  # what `read_meta` reads: every field a reader's checks use
_SYNCED = "synced_content_key"
_SYNC_BATCH = 500  # files per mirror transaction: a sync of a large KB does not hold SQLite's lock for long


def catalogue_key() -> str:
    """The set of KB names that exist on the shared state."""
    return key("kbs")


def files_key(kb: str) -> str:
    return key("kb", kb, "files")


def meta_key(kb: str) -> str:
    return key("kb", kb, "meta")


def _record(raw: bytes | str) -> FileRecord:
    return FileRecord(**json.loads(raw))


@dataclass(frozen=True)
class SharedMeta:
    """A KB's shared meta as one read found it: whether the catalogue lists the KB, and the
    fields of `_PINNED` (None: not set)."""

    listed: bool
    fields: Mapping[str, str | None]


def read_meta(client: redis.Redis, kb: str) -> SharedMeta:
    """The catalogue's word on `kb` and its shared meta, in one round trip (MULTI/EXEC: one
    moment's values, never half of a write)."""
    with translated(client, "reading the manifest"):
        pipe = client.pipeline(transaction=True)
        pipe.sismember(catalogue_key(), kb)
        pipe.hmget(meta_key(kb), list(_PINNED))
        listed, values = pipe.execute()
    return SharedMeta(bool(listed), dict(zip(_PINNED, map(_text, values), strict=True)))


def _unpinned() -> SharedMeta | None:
    return None


class MirroredManifest:
    """A `Manifest` whose truth is on Redis: writes go to the local mirror, then to Redis;
    reads are the mirror's, which `sync` keeps up to date. `pinned` returns the `SharedMeta`
    the calling thread's operation read (None: read Redis), which the shared meta comes from."""

    def __init__(
        self, path: Path, client: redis.Redis, kb: str, pinned: Callable[[], SharedMeta | None] = _unpinned
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.mirror = SqliteManifest(path)
        self._redis = client
        self._kb = kb
        self._pinned = pinned
        self._sync_lock = threading.Lock()
        # Set by the writer holding the KB's lease: raises once the lease is lost, so a writer
        # whose lease expired commits nothing more (another may have started).
        self.fence: Callable[[], None] = _unfenced
        # Opening a KB's manifest creates the KB (as manifest.db does under KB_HOME): readers
        # check that it exists first. Its generation names this life of it, so a KB deleted and
        # created again never meets the answers cached for the old one.
        with translated(client, "opening the manifest"):
            pipe = client.pipeline(transaction=True)
            pipe.hsetnx(meta_key(kb), "generation", _generation())
            pipe.sadd(catalogue_key(), kb)
            pipe.execute()

    def unfence(self) -> None:
        self.fence = _unfenced

    # -- the mirror's own, read locally -------------------------------------------------
    @property
    def readonly(self) -> bool:
        return self.mirror.readonly

    def close(self) -> None:
        self.mirror.close()

    def integrity(self) -> str:
        return self.mirror.integrity()

    def get(self, source: str) -> FileRecord | None:
        return self.mirror.get(source)

    def all(self) -> list[FileRecord]:
        return self.mirror.all()

    def sources_under(self, folder: str) -> list[str]:
        return self.mirror.sources_under(folder)

    def files_matching(
        self, globs: Sequence[str], types: Sequence[str], since_ns: int | None
    ) -> tuple[int, int, list[str]]:
        return self.mirror.files_matching(globs, types, since_ns)

    def chunk_ids_of(self, sources: Sequence[str]) -> list[str]:
        return self.mirror.chunk_ids_of(sources)

    def keyword_schema(self) -> bool:
        return self.mirror.keyword_schema()

    def keyword_ready(self) -> bool:
        return self.mirror.keyword_ready()

    def rebuild_keyword_index(self, chunks: list[StoredChunk]) -> None:
        self.mirror.rebuild_keyword_index(chunks)

    def keyword_search(self, match: str, limit: int, sources: Sequence[str] | None = None) -> list[tuple[str, float]]:
        return self.mirror.keyword_search(match, limit, sources)

    def keyword_rescore(self, match: str, ids: list[str]) -> list[tuple[str, float]]:
        return self.mirror.keyword_rescore(match, ids)

    def keyword_count(self, word: str, cap: int) -> int:
        return self.mirror.keyword_count(word, cap)

    def chunks(self, ids: list[str]) -> dict[str, StoredChunk]:
        return self.mirror.chunks(ids)

    def keyword_problems(self) -> list[str]:
        return self.mirror.keyword_problems()

    def keyword_ids(self) -> set[str]:
        return self.mirror.keyword_ids()

    def has_documents(self) -> bool:
        return self.mirror.has_documents()

    def totals(self) -> tuple[int, int, int]:
        return self.mirror.totals()

    # -- shared meta --------------------------------------------------------------------
    def _shared(
        self, names: Sequence[str], doing: str = "reading the manifest", fresh: bool = False
    ) -> list[str | None]:
        """Fields of the shared meta: the pinned read's, else (or `fresh`) Redis's now."""
        pin = None if fresh else self._pinned()
        if pin is not None:
            return [pin.fields[name] for name in names]
        with translated(self._redis, doing):
            return [_text(v) for v in self._redis.hmget(meta_key(self._kb), list(names))]

    def content_key(self) -> str:
        generation, version = self._shared(["generation", "content_version"], "reading the content version")
        return f"{generation}:{int(version or 0)}"

    def get_meta(self, name: str) -> str | None:
        if name not in _SHARED_META:
            return self.mirror.get_meta(name)
        return self._shared([name])[0]

    def set_meta(self, name: str, value: str) -> None:
        if name not in _SHARED_META:
            self.mirror.set_meta(name, value)
            return
        with translated(self._redis, "writing the manifest"):
            self._redis.hset(meta_key(self._kb), name, value)

    def content_version(self) -> int:
        return int(self.get_meta("content_version") or 0)

    def bump_version(self) -> None:
        self.fence()
        with translated(self._redis, "writing the content version"):
            self._redis.hincrby(meta_key(self._kb), "content_version", 1)

    # -- files: the mirror first, then Redis ----------------------------------------------
    def put(self, rec: FileRecord, chunks: Sequence[Chunk | StoredChunk]) -> None:
        self.fence()
        self.mirror.put(rec, chunks)
        self._publish(rec)

    def touch(self, source: str, size: int, mtime_ns: int) -> None:
        self.fence()
        self.mirror.touch(source, size, mtime_ns)
        rec = self.mirror.get(source)
        if rec is not None:
            self._publish(rec)

    def delete(self, source: str) -> None:
        self.fence()
        self.mirror.delete(source)
        with translated(self._redis, "writing the manifest"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.hdel(files_key(self._kb), source)
            pipe.hincrby(meta_key(self._kb), "records", 1)
            pipe.execute()

    def _publish(self, rec: FileRecord) -> None:
        # `records` counts every change of a record, a new mtime included, which moves no
        # content version (cached answers stay valid) but must reach the other mirrors.
        with translated(self._redis, "writing the manifest"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(files_key(self._kb), rec.source, json.dumps(asdict(rec)))
            pipe.hincrby(meta_key(self._kb), "records", 1)
            pipe.execute()

    # -- keeping the mirror in step -----------------------------------------------------
    def _records_key(self, fresh: bool = False) -> str:
        """Moves with every change of the shared records (and with the content key); `fresh`:
        Redis's now, whatever is pinned."""
        return ":".join(v or "0" for v in self._shared(_RECORDS_KEY, fresh=fresh))

    def is_synced(self) -> bool:
        return self.mirror.get_meta(_SYNCED) == self._records_key()

    def mark_synced(self) -> None:
        """Records that the mirror holds what the shared manifest holds now (a writer, whose
        own commits made both, calls this before it lets go of the lock)."""
        self.mirror.set_meta(_SYNCED, self._records_key(fresh=True))

    def sync(self, stored: Callable[[list[str]], list[StoredChunk]]) -> int:
        """Brings the mirror up to date with Redis; returns how many files changed. `stored`
        reads chunk texts from the vector store. Safe to repeat: it converges on Redis's state."""
        with self._sync_lock:
            target = self._records_key(fresh=True)  # before the records: a write meanwhile means one more sync
            if self.mirror.get_meta(_SYNCED) == target:
                return 0
            with translated(self._redis, "reading the manifest"):
                remote = {_text(s) or "": _record(raw) for s, raw in self._redis.hgetall(files_key(self._kb)).items()}
            local = {r.source: r for r in self.mirror.all()}
            gone = local.keys() - remote.keys()
            for source in gone:
                self.mirror.delete(source)
            changed = [rec for source, rec in remote.items() if local.get(source) != rec]
            # The texts of every changed file in a few large reads, not one per file.
            fetch = [i for rec in changed if _moved(local.get(rec.source), rec) for i in rec.chunk_ids]
            texts = {c.id: c for c in stored(fetch)} if fetch else {}
            for start in range(0, len(changed), _SYNC_BATCH):
                part = changed[start : start + _SYNC_BATCH]
                self.mirror.put_many([(rec, self._texts(rec, local.get(rec.source), texts)) for rec in part])
            self.mirror.set_meta("keyword_index", "ready")
            self.mirror.set_meta(_SYNCED, target)
            return len(gone) + len(changed)

    def _texts(self, rec: FileRecord, old: FileRecord | None, fetched: dict[str, StoredChunk]) -> list[StoredChunk]:
        if not _moved(old, rec):  # same chunks, new size or mtime: the mirror has the texts
            return list(self.mirror.chunks(rec.chunk_ids).values())
        return [fetched[i] for i in rec.chunk_ids if i in fetched]

    # -- the write mark (store/guard.py's, for a shared store) -----------------------------
    def begin_write(self) -> bool:
        """Marks the KB as being written; returns whether the last writer died mid-write, in
        which case the store may hold chunks the manifest does not list yet."""
        with translated(self._redis, "marking the write"):
            return not self._redis.hsetnx(meta_key(self._kb), "writing", "1")

    def end_write(self) -> None:
        with translated(self._redis, "marking the write"):
            self._redis.hdel(meta_key(self._kb), "writing")


def drop_shared(client: redis.Redis, kb: str) -> None:
    with translated(client, "deleting the knowledge base"):
        pipe = client.pipeline(transaction=True)
        pipe.delete(files_key(kb), meta_key(kb))
        pipe.srem(catalogue_key(), kb)
        pipe.execute()


def names(client: redis.Redis) -> list[str]:
    with translated(client, "listing knowledge bases"):
        return sorted(_text(n) or "" for n in client.smembers(catalogue_key()))


def exists(client: redis.Redis, kb: str) -> bool:
    with translated(client, "looking up the knowledge base"):
        return bool(client.sismember(catalogue_key(), kb))


def _unfenced() -> None:
    pass


def _moved(old: FileRecord | None, new: FileRecord) -> bool:
    """Whether the file's chunks changed (else only its size, mtime or ingest time did)."""
    return old is None or old.chunk_ids != new.chunk_ids


def _generation() -> str:
    import secrets

    return secrets.token_hex(8)


def _text(value: bytes | str | None) -> str | None:
    return None if value is None else text(value)
