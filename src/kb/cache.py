"""The answer and query-embedding cache: diskcache under the KB home.

A cache never decides an outcome, so when it cannot be written (a read-only KB_HOME, a
full disk) kb goes on without it instead of failing the question.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Protocol


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
