"""The manifest: what has been ingested, so re-ingesting does only what changed.

One SQLite file per knowledge base, in WAL mode. A file's row is written only after its
chunks are committed to the vector store, so a crash can leave chunks without a row (the
next run replaces them by id) but never a row without chunks.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kb.sqlite import Database, Migration

_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    chunker TEXT NOT NULL,
    model TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]',
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _count_chunks(conn: sqlite3.Connection) -> None:
    """Schema 2: each row keeps its chunk count, so totals never parse every id list."""
    conn.execute("ALTER TABLE files ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE files SET chunk_count = json_array_length(chunk_ids)")


MIGRATIONS: list[Migration] = [_SCHEMA_1, _count_chunks]


@dataclass
class FileRecord:
    source: str
    size: int
    mtime_ns: int
    sha256: str
    chunker: str
    model: str
    chunk_ids: list[str]
    warnings: list[str]
    ingested_at: float


class Manifest:
    """What has been ingested into one knowledge base. `readonly` opens an existing
    manifest without ever writing (read commands; a read-only KB_HOME)."""

    def __init__(self, path: Path, readonly: bool = False, untouched: bool = False) -> None:
        self.path = path
        self._db = Database(path, MIGRATIONS, readonly=readonly, untouched=untouched)
        if not (readonly or untouched):
            # Identifies this manifest among rebuilt ones (kb doctor): cached answers are keyed
            # by (generation, content_version), so a rebuilt KB never meets old answers.
            self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', lower(hex(randomblob(8))))")

    def close(self) -> None:
        self._db.close()

    def integrity(self) -> str:
        return "; ".join(row[0] for row in self._db.execute("PRAGMA integrity_check").fetchall())

    def content_key(self) -> str:
        """Changes with every committed write, and when the KB is rebuilt."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'content_version')").fetchall()
        meta = {r["key"]: r["value"] for r in rows}
        return f"{meta.get('generation')}:{int(meta.get('content_version') or 0)}"

    # -- meta -----------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def content_version(self) -> int:
        return int(self.get_meta("content_version") or 0)

    def bump_version(self) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES ('content_version', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    # -- files ----------------------------------------------------------------------
    def get(self, source: str) -> FileRecord | None:
        row = self._db.execute("SELECT * FROM files WHERE source = ?", (source,)).fetchone()
        return _record(row) if row else None

    def all(self) -> list[FileRecord]:
        return [_record(r) for r in self._db.execute("SELECT * FROM files ORDER BY source")]

    def sources_under(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        rows = self._db.execute("SELECT source FROM files WHERE substr(source, 1, ?) = ?", (len(prefix), prefix))
        return [r["source"] for r in rows]

    def put(self, rec: FileRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO files(source, size, mtime_ns, sha256, chunker, model, chunk_ids, warnings, "
            "ingested_at, chunk_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.source,
                rec.size,
                rec.mtime_ns,
                rec.sha256,
                rec.chunker,
                rec.model,
                json.dumps(rec.chunk_ids),
                json.dumps(rec.warnings),
                rec.ingested_at,
                len(rec.chunk_ids),
            ),
        )

    def touch(self, source: str, size: int, mtime_ns: int) -> None:
        self._db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE source = ?", (size, mtime_ns, source))

    def delete(self, source: str) -> None:
        self._db.execute("DELETE FROM files WHERE source = ?", (source,))

    def has_documents(self) -> bool:
        return self._db.execute("SELECT EXISTS(SELECT 1 FROM files)").fetchone()[0] == 1

    def totals(self) -> tuple[int, int, int]:
        """(documents, chunks, source bytes)."""
        row = self._db.execute(
            "SELECT count(*) AS docs, coalesce(sum(chunk_count), 0) AS chunks, coalesce(sum(size), 0) AS bytes "
            "FROM files"
        ).fetchone()
        return row["docs"], row["chunks"], row["bytes"]


def _record(row: sqlite3.Row) -> FileRecord:
    return FileRecord(
        row["source"],
        row["size"],
        row["mtime_ns"],
        row["sha256"],
        row["chunker"],
        row["model"],
        json.loads(row["chunk_ids"]),
        json.loads(row["warnings"]),
        row["ingested_at"],
    )
