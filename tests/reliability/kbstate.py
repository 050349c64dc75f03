"""Reading a KB's persistent state directly (manifest and Chroma), for comparing two KBs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kb.ingest.manifest import SqliteManifest


def manifest_records(home: Path, kb: str = "default") -> dict:
    manifest = SqliteManifest(home / "kbs" / kb / "manifest.db")
    try:
        return {r.source: r for r in manifest.all()}
    finally:
        manifest.close()


def store_texts(home: Path, kb: str = "default") -> dict[str, str]:
    """chunk id → text, read with a plain Chroma client (not kb's code)."""
    import chromadb
    from chromadb.config import Settings
    from chromadb.errors import NotFoundError

    client = chromadb.PersistentClient(str(home / "kbs" / kb / "chroma"), settings=Settings(anonymized_telemetry=False))
    try:
        col = client.get_collection(f"kb_{kb}")
    except NotFoundError:  # a run killed after creating the folder, before the collection
        return {}
    got = col.get(include=["documents"])
    return dict(zip(got["ids"], got["documents"]))


def committed_current(home: Path, kb: str = "default") -> int:
    """Files whose manifest record matches their content now: a run must not embed them."""
    count = 0
    for source, record in manifest_records(home, kb).items():
        path = Path(source)
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256:
            count += 1
    return count


def snapshot(home: Path, corpus: Path, kb: str = "default") -> tuple[dict, dict]:
    """(relative source → chunk ids, chunk id → text): equal for two KBs of the same folder."""
    records = manifest_records(home, kb)
    files = {str(Path(s).relative_to(corpus)): tuple(r.chunk_ids) for s, r in records.items()}
    return files, store_texts(home, kb)
