"""`kb doctor`: find what is inconsistent or broken in a knowledge base, and repair it.

Checks, in order:
- the manifest opens and passes SQLite's integrity check;
- the vector index opens and answers a query — probed in a child process
  (kb.store.probe), because a damaged HNSW file can crash the native code that reads it;
- every chunk the manifest lists is in the store (else: the file is re-ingested);
- every chunk in the store belongs to a manifest entry (else: an orphan, deleted);
- every source file still exists (else: it is removed from the knowledge base);
- the keyword index holds exactly the manifest's chunks, and its full-text index matches
  its rows and passes FTS5's integrity check (else: it is rebuilt from the chunk texts
  stored in the vector store, without re-embedding).

Repairs use what is stored where it can (orphans are deleted, gone sources dropped) and
re-ingest the affected files where it cannot. A broken index is moved aside and rebuilt by
re-ingesting every source, since its vectors cannot be trusted; a broken manifest is
rebuilt from the sources named in the store. Nothing is deleted from disk: damaged files
are renamed `*.broken-<time>` so they can be inspected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.ingest.discovery import is_gone

if TYPE_CHECKING:
    from kb.access import KbAccess
    from kb.ingest.manifest import FileRecord
    from kb.ingest.pipeline import IngestReport

# Re-ingests files under the write lock the repair already holds (KnowledgeBase gives its own).
Reingest = Callable[[list[Path]], "IngestReport"]


@dataclass
class Problem:
    kind: str  # manifest | index | missing_chunks | orphan_chunks | missing_source | keyword_index
    detail: str
    source: str | None = None
    ids: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["chunks"] = len(out.pop("ids"))
        return out


@dataclass
class DoctorReport:
    kb: str
    documents: int = 0
    chunks_in_manifest: int = 0
    chunks_in_store: int | None = None
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "kb": self.kb,
            "healthy": self.healthy,
            "documents": self.documents,
            "chunks_in_manifest": self.chunks_in_manifest,
            "chunks_in_store": self.chunks_in_store,
            "problems": [p.to_json() for p in self.problems],
            "repaired": self.repaired,
            "quality": self.quality,
        }


def diagnose(kb: KbAccess) -> DoctorReport:
    report = DoctorReport(kb.settings.kb)
    manifest_db = kb.settings.kb_dir / "manifest.db"
    records = None
    if manifest_db.exists():
        try:
            check = kb.manifest.integrity()
            records = kb.manifest.all()
            if check != "ok":
                report.problems.append(Problem("manifest", f"manifest.db fails SQLite's integrity check ({check})"))
        except Exception as exc:  # sqlite3.DatabaseError and friends: the file is not a database
            report.problems.append(Problem("manifest", f"manifest.db cannot be read ({exc})"))
            records = None
    else:
        records = []
    store_ids, why = kb.index_health()
    if why:
        report.problems.append(Problem("index", why))
    if records is None:
        return report
    report.documents = len(records)
    report.chunks_in_manifest = sum(len(r.chunk_ids) for r in records)
    report.quality = [{"source": r.source, "warnings": r.warnings} for r in records if r.warnings]
    for r in records:
        if is_gone(r.source):
            report.problems.append(Problem("missing_source", "the source file is gone", r.source, r.chunk_ids))
    report.problems += _keyword_problems(kb, records)
    if store_ids is None:
        return report
    report.chunks_in_store = len(store_ids)
    in_store = set(store_ids)
    known: set[str] = set()
    for r in records:
        known.update(r.chunk_ids)
        missing = [i for i in r.chunk_ids if i not in in_store]
        if missing:
            report.problems.append(
                Problem(
                    "missing_chunks",
                    f"{len(missing)} of {len(r.chunk_ids)} chunks are not in the store",
                    r.source,
                    missing,
                )
            )
    orphans = sorted(in_store - known)
    if orphans:
        report.problems.append(
            Problem("orphan_chunks", f"{len(orphans)} chunks in the store belong to no document", None, orphans)
        )
    return report


def _keyword_problems(kb: KbAccess, records: list[FileRecord]) -> list[Problem]:
    manifest = kb.manifest
    if not manifest.keyword_schema() or not manifest.keyword_ready():
        return [Problem("keyword_index", "the keyword index is not built yet (hybrid search falls back to dense)")]
    found = manifest.keyword_problems()
    if found:  # the index itself is damaged: comparing its rows would say nothing more
        return [Problem("keyword_index", "; ".join(found))]
    listed = {i for r in records for i in r.chunk_ids}
    rows = manifest.keyword_ids()
    out = []
    missing, orphans = sorted(listed - rows), sorted(rows - listed)
    if missing:
        out.append(Problem("keyword_index", f"{len(missing)} chunks are missing from the keyword index", ids=missing))
    if orphans:
        out.append(Problem("keyword_index", f"{len(orphans)} keyword index rows belong to no document", ids=orphans))
    return out


def repair(kb: KbAccess, report: DoctorReport, reingest: Reingest) -> DoctorReport:
    """Fixes what `diagnose` found, then diagnoses again. The caller (KnowledgeBase.doctor)
    holds the write lock and the gate, from before the diagnosis to the end."""
    kinds = {p.kind for p in report.problems}
    if not kinds:
        return report
    if kinds & {"manifest", "index"}:
        done = _rebuild(kb, kinds, reingest)
    else:
        done = _fix_in_place(kb, report, reingest)
    if "keyword_index" in kinds and not kinds & {"manifest", "index"}:
        # After the other repairs, so re-ingested files are in the store it is rebuilt from.
        done.append(f"rebuilt the keyword index from {kb.build_keyword_index()} stored chunk texts")
    after = diagnose(kb)
    after.repaired = done
    return after


def _rebuild(kb: KbAccess, kinds: set[str], reingest: Reingest) -> list[str]:
    """Moves the damaged files aside and re-ingests every known source."""
    from kb.store.local import stored_sources

    stamp = time.strftime("%Y%m%d-%H%M%S")
    chroma_dir = kb.settings.kb_dir / "chroma"
    if "manifest" in kinds:
        # The store's chunk metadata still names every source; read from its SQLite file
        # alone, since the index itself may be damaged too and must not load in this process.
        sources = stored_sources(chroma_dir)
    else:
        sources = [r.source for r in kb.manifest.all()]
    kb.drop_adapters()
    for name in ("manifest.db", "manifest.db-wal", "manifest.db-shm", "chroma"):
        path = kb.settings.kb_dir / name
        if path.exists() and (name == "chroma" or "manifest" in kinds):
            path.rename(path.with_name(f"{name}.broken-{stamp}"))
    if "manifest" not in kinds:
        _forget_all(kb)
    gone = [s for s in sources if is_gone(s)]
    result = reingest([Path(s) for s in sources if not is_gone(s)])
    done = [
        f"rebuilt the {'manifest and ' if 'manifest' in kinds else ''}index from "
        f"{result.added + result.updated} source files (damaged files kept as *.broken-{stamp})"
    ]
    if gone:
        done.append(f"dropped {len(gone)} documents whose source files are gone")
    if result.failed:
        done.append(
            f"{len(result.failed)} files could not be re-ingested: "
            + "; ".join(f"{f['path']}: {f['reason']}" for f in result.failed[:5])
        )
    return done


def _fix_in_place(kb: KbAccess, report: DoctorReport, reingest: Reingest) -> list[str]:
    done: list[str] = []
    again = []
    with kb.write_mark():
        for p in report.problems:
            if p.kind == "orphan_chunks":
                kb.store.delete(p.ids)
                done.append(f"deleted {len(p.ids)} orphan chunks")
            elif p.kind in ("missing_source", "missing_chunks") and p.source:
                record = kb.manifest.get(p.source)
                if record:
                    kb.store.delete(record.chunk_ids)
                    kb.manifest.delete(p.source)
                if p.kind == "missing_source":
                    done.append(f"removed {p.source} (its file is gone)")
                elif not is_gone(p.source):
                    again.append(Path(p.source))
        kb.manifest.bump_version()
        if again:
            result = reingest(again)
            done.append(f"re-ingested {result.added} files with missing chunks")
    return done


def _forget_all(kb: KbAccess) -> None:
    for record in kb.manifest.all():
        kb.manifest.delete(record.source)
    kb.manifest.bump_version()
