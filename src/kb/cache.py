"""The answer and query-embedding cache: diskcache under the KB home, or Redis (`state.url`)
when several kb instances share one.

A cache never decides an outcome, so when it cannot be written (a read-only KB_HOME, a
full disk, Redis down) kb goes on without it instead of failing the question.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from kb import state

if TYPE_CHECKING:
    import redis


class Cache(Protocol):
    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def clear(self) -> int: ...
    def close(self) -> None: ...


class DiskCache:
    def __init__(self, path: Path, size_limit_mb: int) -> None:
        import diskcache

        self._cache = diskcache.Cache(str(path), size_limit=size_limit_mb * 1024 * 1024)

    def get(self, key: str) -> Any:
        try:
            return self._cache.get(key)
        except Exception:  # a damaged or vanished entry is a miss
            return None

    def set(self, key: str, value: Any) -> None:
        with contextlib.suppress(Exception):  # read-only or full: the answer still goes out, unkept
            self._cache.set(key, value)

    def clear(self) -> int:
        return self._cache.clear()

    def close(self) -> None:
        self._cache.close()


class RedisCache:
    """The cache on the shared Redis: an answer one instance computed is a hit on every other.

    Values are pickled, as diskcache does; Redis is kb's own state, as trusted as the KB home.
    """

    # diskcache is bounded by size_limit_mb; on a Redis that also holds jobs and breakers a
    # size bound is Redis's own maxmemory, so the cache bounds itself in time instead: an entry
    # nobody asked for in a week goes. Only cache keys carry a TTL, so a `volatile-lru`
    # maxmemory-policy evicts cache entries and never a job record or breaker.
    TTL_S = 7 * 24 * 3600
    _CLEAR_BATCH = 500

    def __init__(self, client: redis.Redis, ttl_s: int = TTL_S) -> None:
        self._client = client
        self._ttl_s = ttl_s

    @staticmethod
    def _key(key: str) -> str:
        return state.key("cache", key)

    def get(self, key: str) -> Any:
        try:
            blob = self._client.get(self._key(key))
            return None if blob is None else pickle.loads(cast(bytes, blob))
        except Exception:  # Redis down, or an entry a newer kb wrote: a miss
            return None

    def set(self, key: str, value: Any) -> None:
        with contextlib.suppress(Exception):  # Redis down or full: the answer still goes out, unkept
            self._client.set(self._key(key), pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), ex=self._ttl_s)

    def clear(self) -> int:
        """Deletes kb's cache keys only (the same Redis may hold anything else)."""
        # SCAN, not KEYS: it never blocks Redis for the other instances while it walks the keys.
        pattern = state.key("cache", "*")
        removed = 0
        with state.translated(self._client, "clearing the cache"):
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=pattern, count=self._CLEAR_BATCH):
                batch.append(name)
                if len(batch) >= self._CLEAR_BATCH:
                    removed += int(self._client.delete(*batch))
                    batch = []
            if batch:
                removed += int(self._client.delete(*batch))
        return removed

    def close(self) -> None:
        state.release(self._client)


class MemoryCache:
    """A bounded least-recently-used cache in this process's memory: for query embeddings in
    long-lived processes, where a disk or Redis round trip per search costs more than it saves
    (a query's vector takes milliseconds to compute; kb serve's hot path writes nothing)."""

    def __init__(self, max_items: int = 4096) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count

    def close(self) -> None:
        pass


class NullCache:
    """No cache: used when the KB home cannot hold one."""

    def get(self, key: str) -> Any:
        return None

    def set(self, key: str, value: Any) -> None:
        pass

    def clear(self) -> int:
        return 0

    def close(self) -> None:
        pass


def open_cache(path: Path, size_limit_mb: int) -> Cache:
    try:
        return DiskCache(path, size_limit_mb)
    except Exception:  # diskcache creates its folder and database on open
        return NullCache()


def answer_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return "answer:" + hashlib.sha256(blob.encode()).hexdigest()


if TYPE_CHECKING:  # mypy holds every cache to the protocol
    _CACHES: tuple[type[Cache], ...] = (DiskCache, RedisCache, MemoryCache, NullCache)
