"""The manifest: what has been ingested, so re-ingesting does only what changed.

One SQLite file per knowledge base, in WAL mode. A file's row is written only after its
chunks are committed to the vector store, so a crash can leave chunks without a row (the
next run replaces them by id) but never a row without chunks.

It also holds the keyword index (schema 3): each committed chunk's text and location in
`chunks`, and an FTS5 index over them (Porter stemming) kept in step by triggers. The rows
of a file are written in the transaction that records the file and deleted in the one that
forgets it, so the keyword index holds exactly the committed files. A KB from before
schema 3 has its index built once from the texts in the vector store (`keyword_index` in
meta is `pending` until then); read-only, it is opened at schema 2 and searched densely.

`Manifest` is the interface the pipelines, retrieval and `kb doctor` use; `SqliteManifest` is
the embedded implementation, and shared_manifest.py's `MirroredManifest` the one for a KB
shared through Redis.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kb.documents import Chunk, StoredChunk
from kb.sqlite import Database, Migration, statements

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


# The keyword index. External content: the text is stored once, in `chunks`; `chunks_fts`
# holds only the inverted index. No INSERT OR REPLACE on `chunks`: its implicit delete does
# not fire the delete trigger (recursive_triggers is off) and would leave the index stale.
KEYWORD_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    heading TEXT,
    page INTEGER,
    lines TEXT,
    locator TEXT,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.rowid, new.text, new.heading);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading) VALUES ('delete', old.rowid, old.text, old.heading);
END;
CREATE TRIGGER IF NOT EXISTS chunks_au AFTER UPDATE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading) VALUES ('delete', old.rowid, old.text, old.heading);
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.rowid, new.text, new.heading);
END;
"""
KEYWORD_OBJECTS = ("chunks", "chunks_fts", "chunks_source", "chunks_ai", "chunks_ad", "chunks_au")
KEYWORD_SCHEMA_VERSION = 3


def _keyword_index(conn: sqlite3.Connection) -> None:
    """Schema 3: the keyword index; pending (built from the vector store's texts) if the KB
    already holds documents."""
    for statement in statements(KEYWORD_SCHEMA):
        conn.execute(statement)
    has_files = conn.execute("SELECT EXISTS(SELECT 1 FROM files)").fetchone()[0]
    # OR IGNORE: a file whose version was reset (re-migrated) keeps the state it had.
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('keyword_index', ?)", ("pending" if has_files else "ready",)
    )


MIGRATIONS: list[Migration] = [_SCHEMA_1, _count_chunks, _keyword_index]
# Readers can do without the keyword index: an older manifest opened read-only still searches.
READABLE_FROM = 2


_CHUNK_COLUMNS = "id, source, heading, page, lines, locator, text"


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


class Manifest(Protocol):
    """What has been ingested into one knowledge base: file records, meta, the keyword index."""

    @property
    def readonly(self) -> bool: ...
    def close(self) -> None: ...
    def integrity(self) -> str: ...
    def content_key(self) -> str: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def content_version(self) -> int: ...
    def bump_version(self) -> None: ...
    def get(self, source: str) -> FileRecord | None: ...
    def all(self) -> list[FileRecord]: ...
    def sources_under(self, folder: str) -> list[str]: ...
    def files_matching(
        self, globs: Sequence[str], types: Sequence[str], since_ns: int | None
    ) -> tuple[int, int, list[str]]: ...
    def chunk_ids_of(self, sources: Sequence[str]) -> list[str]: ...
    def put(self, rec: FileRecord, chunks: Sequence[Chunk | StoredChunk]) -> None: ...
    def touch(self, source: str, size: int, mtime_ns: int) -> None: ...
    def delete(self, source: str) -> None: ...
    def keyword_schema(self) -> bool: ...
    def keyword_ready(self) -> bool: ...
    def rebuild_keyword_index(self, chunks: list[StoredChunk]) -> None: ...
    def keyword_search(
        self, match: str, limit: int, sources: Sequence[str] | None = None
    ) -> list[tuple[str, float]]: ...
    def keyword_rescore(self, match: str, ids: list[str]) -> list[tuple[str, float]]: ...
    def keyword_count(self, word: str, cap: int) -> int: ...
    def chunks(self, ids: list[str]) -> dict[str, StoredChunk]: ...
    def keyword_problems(self) -> list[str]: ...
    def keyword_ids(self) -> set[str]: ...
    def has_documents(self) -> bool: ...
    def totals(self) -> tuple[int, int, int]: ...


class SqliteManifest:
    """The manifest in a SQLite file. `readonly` opens an existing manifest without ever
    writing (read commands; a read-only KB_HOME); `untouched` neither writes nor migrates
    (`kb ingest --dry-run`)."""

    def __init__(self, path: Path, readonly: bool = False, untouched: bool = False) -> None:
        self.path = path
        self._db = Database(path, MIGRATIONS, readonly=readonly, untouched=untouched, readable_from=READABLE_FROM)
        if not (readonly or untouched):
            # Identifies this manifest among rebuilt ones (kb doctor): cached answers are keyed
            # by (generation, content_version), so a rebuilt KB never meets old answers.
            self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', lower(hex(randomblob(8))))")

    @property
    def readonly(self) -> bool:
        return self._db.readonly

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

    def files_matching(
        self, globs: Sequence[str], types: Sequence[str], since_ns: int | None
    ) -> tuple[int, int, list[str]]:
        """(how many files a search filter leaves, how many there are, their sources when some
        but not all are left): the source matches one of `globs` (SQLite GLOB patterns), its
        suffix is one of `types` (lower case, without the dot) and its mtime is `since_ns` or
        later; empty parts do not filter. Decided in SQLite: a knowledge base's file list
        never crosses into Python (2.5 ms for 5,000 files) to be matched there."""
        clauses: list[str] = []
        params: list[object] = []
        for column, patterns in (("source", globs), ("lower(source)", [f"*.{t}" for t in types])):
            if patterns:
                clauses.append("(" + " OR ".join(f"{column} GLOB ?" for _ in patterns) + ")")
                params += patterns
        if since_ns is not None:
            clauses.append("mtime_ns >= ?")
            params.append(since_ns)
        where = " AND ".join(clauses) or "1"
        matched, total = self._db.execute(
            f"SELECT count(*) FILTER (WHERE {where}), count(*) FROM files", params
        ).fetchone()
        if matched in (0, total):  # none, or every one: no list needed
            return matched, total, []
        return matched, total, [r[0] for r in self._db.execute(f"SELECT source FROM files WHERE {where}", params)]

    def chunk_ids_of(self, sources: Sequence[str]) -> list[str]:
        """The committed chunk ids of these files, from their records (every schema has them)."""
        rows = self._db.execute(
            "SELECT j.value FROM files f, json_each(f.chunk_ids) j WHERE f.source IN (SELECT value FROM json_each(?))",
            (json.dumps(list(sources)),),
        )
        return [r[0] for r in rows]

    def put(self, rec: FileRecord, chunks: Sequence[Chunk | StoredChunk]) -> None:
        """Records a file and replaces its keyword rows, in one transaction."""
        self.put_many([(rec, chunks)])

    def put_many(self, files: Sequence[tuple[FileRecord, Sequence[Chunk | StoredChunk]]]) -> None:
        """`put` for several files, in one transaction."""
        with self._db.transaction() as conn:
            for rec, chunks in files:
                conn.execute(
                    "INSERT OR REPLACE INTO files(source, size, mtime_ns, sha256, chunker, model, chunk_ids, "
                    "warnings, ingested_at, chunk_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                conn.execute("DELETE FROM chunks WHERE source = ?", (rec.source,))
                rows = [(c if isinstance(c, StoredChunk) else StoredChunk.of(c)).row() for c in chunks]
                # A chunk id is a hash of its source and content, so it belongs to this file alone;
                # an equal id left over elsewhere would be another file's stale row.
                conn.executemany("DELETE FROM chunks WHERE id = ?", [(r[0],) for r in rows])
                conn.executemany(f"INSERT INTO chunks({_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def touch(self, source: str, size: int, mtime_ns: int) -> None:
        self._db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE source = ?", (size, mtime_ns, source))

    def delete(self, source: str) -> None:
        """Forgets a file and its keyword rows, in one transaction."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM files WHERE source = ?", (source,))
            if self.keyword_schema():
                conn.execute("DELETE FROM chunks WHERE source = ?", (source,))

    # -- keyword index ------------------------------------------------------------------
    def keyword_schema(self) -> bool:
        """Whether the keyword tables exist (not for a pre-schema-3 KB opened read-only)."""
        return self._db.schema() >= KEYWORD_SCHEMA_VERSION

    def keyword_ready(self) -> bool:
        """Whether the keyword index holds every committed chunk (see the module docstring)."""
        return self.keyword_schema() and self.get_meta("keyword_index") == "ready"

    def rebuild_keyword_index(self, chunks: list[StoredChunk]) -> None:
        """Replaces the keyword index — tables, triggers and rows — in one transaction, and
        marks it ready. Built from scratch, so a damaged index or a dropped trigger is gone."""
        with self._db.transaction() as conn:
            for kind, name in (("TRIGGER", "chunks_ai"), ("TRIGGER", "chunks_ad"), ("TRIGGER", "chunks_au")):
                conn.execute(f"DROP {kind} IF EXISTS {name}")
            conn.execute("DROP TABLE IF EXISTS chunks_fts")
            conn.execute("DROP TABLE IF EXISTS chunks")
            for statement in statements(KEYWORD_SCHEMA):
                conn.execute(statement)
            conn.executemany(
                f"INSERT INTO chunks({_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", [c.row() for c in chunks]
            )
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('keyword_index', 'ready')")

    def keyword_search(self, match: str, limit: int, sources: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, bm25) of the best `limit` chunks for an FTS5 MATCH expression, best
        first. FTS5's bm25 is lower-is-better (negative). With `sources`, only chunks of those
        documents are ranked (a search filter): FTS5 walks the words' postings as before and
        computes bm25 for those rows only (the unary + as in keyword_rescore)."""
        if sources is None:
            rows = self._db.execute(
                "SELECT c.id, rank FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?",
                (match, limit),
            )
        else:
            rows = self._db.execute(
                "SELECT c.id, rank FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ?1 AND +chunks_fts.rowid IN "
                "(SELECT k.rowid FROM chunks k WHERE k.source IN (SELECT value FROM json_each(?2))) "
                "ORDER BY rank LIMIT ?3",
                (match, json.dumps(list(sources)), limit),
            )
        return [(r[0], r[1]) for r in rows]

    def keyword_rescore(self, match: str, ids: list[str]) -> list[tuple[str, float]]:
        """(chunk id, bm25) for the chunks among `ids` that `match` finds, unordered: the
        same bm25 as keyword_search's. FTS5 still walks every posting of the expression's
        words but computes bm25 for these rows only; the unary + keeps SQLite from handing
        the id list to FTS5, which would evaluate the expression once per id (10x slower)."""
        rows = self._db.execute(
            "SELECT c.id, f.score FROM (SELECT rowid, bm25(chunks_fts) AS score FROM chunks_fts "
            "WHERE chunks_fts MATCH ?1 AND +rowid IN "
            "(SELECT k.rowid FROM chunks k WHERE k.id IN (SELECT value FROM json_each(?2)))) f "
            "JOIN chunks c ON c.rowid = f.rowid",
            (match, json.dumps(ids)),
        )
        return [(r[0], r[1]) for r in rows]

    def keyword_count(self, word: str, cap: int) -> int:
        """How many chunks hold `word` (a plain token), counting no further than `cap`:
        without ORDER BY, FTS5 walks the postings in rowid order and stops at the LIMIT."""
        row = self._db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)", (f'"{word}"', cap)
        ).fetchone()
        return int(row[0])

    def chunks(self, ids: list[str]) -> dict[str, StoredChunk]:
        """The committed chunks among `ids`, by id (ids of uncommitted chunks are absent)."""
        out: dict[str, StoredChunk] = {}
        for start in range(0, len(ids), 500):  # below SQLite's host-parameter limit
            part = ids[start : start + 500]
            rows = self._db.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({','.join('?' * len(part))})", part
            )
            for r in rows:
                out[r["id"]] = StoredChunk(
                    r["id"], r["source"], r["text"], r["heading"], r["page"], r["lines"], r["locator"]
                )
        return out

    def keyword_problems(self) -> list[str]:
        """What is wrong with the keyword index as stored: missing schema objects, FTS5's
        own integrity check, index entries without a row and rows without one. SQLite 3.40's
        integrity-check does not compare an external-content index with its table, so the
        last two compare FTS5's per-row `docsize` shadow table with `chunks`."""
        names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        lacking = [n for n in KEYWORD_OBJECTS if n not in names]
        if lacking:
            return [f"the keyword index lacks {', '.join(lacking)}"]
        out = []
        if not self._db.readonly:  # an INSERT, even though it writes nothing
            try:
                self._db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
            except Exception as exc:  # StoreError, or sqlite3.DatabaseError for a corrupt vtab
                out.append(f"the full-text index fails its integrity check ({exc})")
        stale = self._db.execute(
            "SELECT count(*) FROM chunks_fts_docsize d LEFT JOIN chunks c ON c.rowid = d.id WHERE c.rowid IS NULL"
        ).fetchone()[0]
        unindexed = self._db.execute(
            "SELECT count(*) FROM chunks c LEFT JOIN chunks_fts_docsize d ON d.id = c.rowid WHERE d.id IS NULL"
        ).fetchone()[0]
        if stale:
            out.append(f"{stale} full-text entries belong to no stored chunk")
        if unindexed:
            out.append(f"{unindexed} stored chunks are missing from the full-text index")
        return out

    def keyword_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT id FROM chunks")}

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
