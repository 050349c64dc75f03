"""kb's small SQLite databases (manifest, metrics, breakers), safe to share between threads.

Each thread gets its own connection (WAL lets readers and one writer work at once), so no
transaction is ever shared between threads. Rows come back as `sqlite3.Row`, read by column
name. Each file carries a schema version (`PRAGMA user_version`) and is migrated forward
on open, one step at a time, each step in its own transaction.

A database opened `readonly` is never created, migrated or written; when its folder is not
writable (SQLite cannot create the WAL index beside it), it is opened as immutable. It may
be older than this kb's schema down to `readable_from` (what readers can do without).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kb.errors import StoreError

# A migration is a SQL script or a function of the connection, run inside a transaction.
Migration = str | Callable[[sqlite3.Connection], None]


BUSY_S = 30.0  # how long a statement waits for another connection's lock


def _into_wal(conn: sqlite3.Connection) -> None:
    """Switches the file to WAL (a no-op once it is). While another process creates the
    same new file and switches it, SQLite answers "database is locked" at once, without
    waiting out the busy timeout: processes started together (two `kb worker`s on a new
    home) would fail. So this waits for it, as long as any other statement would."""
    deadline = time.monotonic() + BUSY_S
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


class Database:
    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration],
        *,
        readonly: bool = False,
        untouched: bool = False,
        readable_from: int | None = None,
    ) -> None:
        self.path = path
        self.readonly = readonly or untouched
        self._migrations = list(migrations)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # `untouched`: not even SQLite's WAL index may appear beside the file (a dry run).
        # With no WAL file there is nothing uncommitted to see, so the file is read as
        # immutable; with one, a writer is at work and its index exists already. A writer
        # that starts during an immutable read can make that read fail; it never writes.
        self._immutable = untouched and not Path(f"{path}-wal").exists()
        conn = self._conn()  # open now, so a bad file fails here with a clear message
        if not self.readonly:
            self._migrate(conn)
        elif self.version(conn) < (len(self._migrations) if readable_from is None else readable_from):
            raise StoreError(
                f"{path} was written by an older kb and must be upgraded, which needs write access",
                remedy="write_once",
                path=str(path),
            )

    # -- connections ----------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                return self._open_readonly()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_S, isolation_level=None, check_same_thread=False)
            _into_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open {self.path} ({exc}); check permissions or remove the file") from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise StoreError(f"{self.path} does not exist")
        uri = self.path.resolve().as_uri()
        for suffix in ("?mode=ro", "?mode=ro&immutable=1") if not self._immutable else ("?mode=ro&immutable=1",):
            conn = sqlite3.connect(
                uri + suffix, uri=True, timeout=BUSY_S, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                conn.close()  # WAL needs a writable folder for its index: fall back to immutable
                continue
            self._immutable = "immutable" in suffix
            conn.row_factory = sqlite3.Row
            return conn
        raise sqlite3.OperationalError("cannot be read")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Closes every thread's connection; the caller makes sure none is in use."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- use ------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Cursor:
        try:
            return self._conn().execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise _translate(self.path, exc) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn().executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            raise _translate(self.path, exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT on this thread's connection (ROLLBACK on error)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _translate(self.path, exc) from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- schema ---------------------------------------------------------------------
    @staticmethod
    def version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def schema(self) -> int:
        """This file's schema version (below the latest only when opened read-only)."""
        return self.version(self._conn())

    def _migrate(self, conn: sqlite3.Connection) -> None:
        current = self.version(conn)
        if current > len(self._migrations):
            raise StoreError(
                f"{self.path} was written by a newer kb (schema {current}, this kb knows {len(self._migrations)}); "
                "upgrade kb"
            )
        for number in range(current + 1, len(self._migrations) + 1):
            with self.transaction():
                if self.version(conn) >= number:  # another process migrated meanwhile
                    continue
                step = self._migrations[number - 1]
                if isinstance(step, str):
                    for statement in statements(step):
                        conn.execute(statement)
                else:
                    step(conn)
                conn.execute(f"PRAGMA user_version = {number}")


def statements(script: str) -> list[str]:
    # executescript() would COMMIT the migration's transaction; run statement by statement.
    parts, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            parts.append(buffer.strip())
            buffer = ""
    return [p for p in parts if p]


def _translate(path: Path, exc: sqlite3.OperationalError) -> StoreError:
    text = str(exc)
    if "readonly" in text:
        return StoreError(f"{path} is read-only ({text}); kb needs write access to change it")
    if "locked" in text or "busy" in text:
        return StoreError(f"{path} stayed locked by another process ({text}); try again")
    return StoreError(f"{path}: {text}")
