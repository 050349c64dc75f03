"""SQLite connections shared by kb's small databases: WAL, a busy timeout, autocommit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kb.errors import StoreError


def connect(path: Path, schema: str) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        return db
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path} ({exc}); check permissions or remove the file") from exc
