"""The vector store: a local Chroma PersistentClient, or a Chroma server (`store.url`).

Chroma is imported only here, and its exceptions become StoreError here. Writes go in
batches no larger than the client's maximum; upserts by chunk id make a repeated batch
harmless. A Chroma server is shared by every kb instance; an instance whose server is
unreachable answers StoreError (503) naming it, and works again once it is back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from kb.documents import Chunk, Hit, StoredChunk
from kb.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

COLLECTION_PREFIX = "kb_"
# HNSW search breadth (docs/benchmarks.md, "Search at a million chunks"): half the misses of
# Chroma's default 100 against exact search, for ~0.2 ms. A store that exists keeps what it
# was created with (Chroma ignores a creation configuration then); a rebuild gets this.
EF_SEARCH = 200


# chromadb 1.5's local client is not safe for concurrent calls on one store: threads
# querying together hung in its Rust bindings or crashed in the HNSW walk
# (tests/reliability/test_threads.py; chroma-core/chroma#6979), and a process that read a
# store while another process wrote it crashed in a query (SIGSEGV in the same test, in CI;
# chromadb's Rust bindings load the HNSW files another writer may be rewriting). So each
# call on a local store holds, for its duration, a lock of this process (one call at a
# time per path) and a file lock beside the store, shared for reads and exclusive for writes
# and opening, so no process reads while another writes. A call takes milliseconds; a read
# waits at most for one write batch.
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


def _unguarded(write: bool = False) -> contextlib.nullcontext:
    """A Chroma server takes concurrent requests and looks after its own files."""
    return contextlib.nullcontext()


class ChromaStore:
    """One KB's collection. `path` is a local store's folder; with `url` set, the collection
    lives on that Chroma server instead and `path` is not used."""

    def __init__(self, path: Path, name: str, url: str | None = None) -> None:
        self._url = url
        self._snapshot = None if url else readonly_snapshot(path)
        self._access: Callable[..., contextlib.AbstractContextManager[None]] = _unguarded if url else _access(path)
        self._path, self._name = path, name
        try:
            if not url:
                path.mkdir(parents=True, exist_ok=True)
            with self._access(write=True):  # opening may create the collection
                self._open()
        except Exception as exc:  # chromadb raises assorted internal types on a damaged store
            self._remove_snapshot()
            raise self._error(f"cannot open the vector store at {url or path}", exc, local_fix=True) from exc

    def _error(self, what: str, exc: Exception, local_fix: bool = False) -> StoreError:
        if self._url:
            return _server_error(self._url, what, exc)
        fix = "`kb doctor --repair` rebuilds it" if local_fix else "run `kb doctor`"
        return StoreError(f"{what} ({exc}); {fix}")

    def _open(self, create: bool = True) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        if self._url:
            self._client = _http_client(self._url)
        else:
            self._client = chromadb.PersistentClient(
                path=str(self._snapshot or self._path),
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
            )
        name = COLLECTION_PREFIX + self._name
        if create:
            # The space goes in the configuration too: next to the legacy metadata key, a
            # configuration silently makes the space l2 (chromadb 1.5.9).
            self._col = self._client.get_or_create_collection(
                name, configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}}, embedding_function=None
            )
        else:
            self._col = self._client.get_collection(name, embedding_function=None)
        self._batch = self._client.get_max_batch_size()

    def _call(self, what: str, method: str, write: bool = False, **arguments: Any) -> Any:
        """Runs one method of the collection under the store's access lock. When it fails
        because the collection this store opened is no longer the one there, the store looks
        it up again and runs the call once more:
        - locally, an index loaded before another process deleted chunks ("Error finding id");
        - on a server, another instance deleted the KB and built it again: chromadb addresses
          a collection by its id, and the new one has a new id ("... does not exist").
        A read looks the collection up without creating it."""
        with self._access(write=write):
            try:
                return getattr(self._col, method)(**arguments)
            except Exception as exc:
                gone = "does not exist" if self._url else "error finding id"
                if gone not in str(exc).lower():
                    raise self._error(what, exc) from exc
        with self._access(write=True):
            try:
                if not self._url:
                    cast(Any, self._client).close()
                self._open(create=write)
                return getattr(self._col, method)(**arguments)
            except Exception as exc:
                raise self._error(what, exc) from exc

    def add(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        for i in range(0, len(chunks), self._batch):
            part = chunks[i : i + self._batch]
            self._call(
                "writing to the vector store failed",
                "upsert",
                write=True,
                ids=[c.id for c in part],
                embeddings=vectors[i : i + self._batch],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],
            )

    def close(self) -> None:
        # Chroma shares one system per path in a process, counted by reference: closing the
        # last client releases it, so a store reopened at the same path loads what other
        # processes wrote since (and a rebuilt store is not served from the old one).
        with self._access(write=True):  # closing may flush what this client wrote
            cast(Any, self._client).close()  # in chromadb >= 1.4, missing from its type stubs
        self._remove_snapshot()

    def _remove_snapshot(self) -> None:
        if self._snapshot is not None:
            shutil.rmtree(self._snapshot.parent, ignore_errors=True)
            self._snapshot = None

    def existing(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), self._batch):
            part = ids[i : i + self._batch]
            found.update(self._call("reading the vector store failed", "get", ids=part, include=[])["ids"])
        return found

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), self._batch):
            part = ids[i : i + self._batch]
            self._call("deleting from the vector store failed", "delete", write=True, ids=part)

    def query(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        res = self._call(  # no count() first: see nearest()
            "searching the vector store failed",
            "query",
            query_embeddings=vectors,
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        out = []
        empty: list = [[] for _ in res["ids"]]
        for ids, docs, metas, dists in zip(
            res["ids"], res["documents"] or empty, res["metadatas"] or empty, res["distances"] or empty
        ):
            # An index loaded before another process deleted chunks still finds them, but
            # their text and metadata are gone: such ids are not results.
            found = [(cid, doc, meta, dist) for cid, doc, meta, dist in zip(ids, docs, metas, dists) if meta]
            out.append(
                [
                    # cosine distance → similarity in [-1, 1]
                    Hit.from_store(rank + 1, 1.0 - dist, cid, doc or "", dict(meta))
                    for rank, (cid, doc, meta, dist) in enumerate(found, start=0)
                ]
            )
        return out

    def nearest(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the `n` nearest chunks, without their texts:
        hybrid search reads the texts of the few it keeps from the manifest. No count()
        first: it costs more than the query at 100k chunks (7 ms against 3), and chromadb 1.5
        answers an empty collection, or one smaller than `n`, with what it has."""
        res = self._call(
            "searching the vector store failed",
            "query",
            query_embeddings=vector[None],
            n_results=n,
            include=["distances"],
        )
        return [(cid, 1.0 - dist) for cid, dist in zip(res["ids"][0], (res["distances"] or [[]])[0])]

    def stored(self, ids: list[str]) -> list[StoredChunk]:
        """The texts and locations of the chunks among `ids` that the store holds (to build
        the keyword index of a KB from before it existed, without re-embedding)."""
        out = []
        for i in range(0, len(ids), self._batch):
            part = ids[i : i + self._batch]
            res = self._call("reading the vector store failed", "get", ids=part, include=["documents", "metadatas"])
            for cid, doc, meta in zip(res["ids"], res["documents"] or [], res["metadatas"] or []):
                if not meta:
                    continue
                page = meta.get("page")
                out.append(
                    StoredChunk(
                        cid,
                        str(meta.get("source", "")),
                        doc or "",
                        _str(meta.get("heading")),
                        int(page) if isinstance(page, int | float) else None,
                        _str(meta.get("lines")),
                        _str(meta.get("locator")),
                    )
                )
        return out

    def count(self) -> int:
        return self._call("reading the vector store failed", "count")

    def ids(self, page: int = 10_000) -> set[str]:
        """Every chunk id in the collection (kb doctor on a Chroma server)."""
        found: set[str] = set()
        while True:
            res = self._call("reading the vector store failed", "get", include=[], limit=page, offset=len(found))
            part = res["ids"]
            found.update(part)
            if len(part) < page:
                return found


def _unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the server could not be reached (rather than that it refused)."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    return "could not connect to a chroma server" in str(exc).lower()


def ping_server(url: str) -> None:
    """Raises StoreError naming the server if the Chroma server at `url` does not answer
    (readiness, kb doctor)."""
    _on_server(url, "the vector store does not answer", lambda client: client.heartbeat())


def delete_remote(url: str, name: str) -> None:
    """Drops a KB's collection on a Chroma server (`kb kbs delete`); gone already is fine."""

    def delete(client: Any) -> None:
        try:
            client.delete_collection(COLLECTION_PREFIX + name)
        except Exception as exc:
            if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                raise

    _on_server(url, "deleting the collection failed", delete)


# One client per server URL for the calls above (a readiness check a second): a failed call
# drops it, so the next one connects afresh.
_servers: dict[str, Any] = {}


def _on_server(url: str, what: str, call: Callable[[Any], Any]) -> Any:
    try:
        client = _servers.get(url) or _servers.setdefault(url, _http_client(url))
        return call(client)
    except Exception as exc:
        _servers.pop(url, None)
        raise _server_error(url, what, exc) from exc


def _http_client(url: str) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parts = urlsplit(url)
    return chromadb.HttpClient(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (443 if parts.scheme == "https" else 8000),
        ssl=parts.scheme == "https",
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
    )


def _server_error(url: str, what: str, exc: Exception) -> StoreError:
    if _unreachable(exc):
        return StoreError(
            f"the Chroma server at {url} is unreachable ({exc}); start it (`chroma run`) or check store.url"
        )
    return StoreError(f"{what}: the Chroma server at {url} answered {exc}")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


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
