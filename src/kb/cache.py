"""The disk cache (diskcache under the KB home): answers and query embeddings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


class DiskCache:
    def __init__(self, path: Path, size_limit_mb: int) -> None:
        import diskcache

        self._cache = diskcache.Cache(str(path), size_limit=size_limit_mb * 1024 * 1024)

    def get(self, key: str):
        return self._cache.get(key)

    def set(self, key: str, value) -> None:
        self._cache.set(key, value)

    def clear(self) -> int:
        return self._cache.clear()

    def volume(self) -> int:
        return self._cache.volume()

    def close(self) -> None:
        self._cache.close()


def answer_key(**parts) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return "answer:" + hashlib.sha256(blob.encode()).hexdigest()
