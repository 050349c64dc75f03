"""`kb ingest --dry-run`: what an ingest would add, update and remove, decided the way the
pipeline decides it (stat, then the content hash when only the mtime moved), with the
estimated chunks of the files to embed. Reads the manifest, never writes anything."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from kb.config import Settings
from kb.ingest.chunking import Chunker
from kb.ingest.discovery import discover, is_gone
from kb.ingest.estimate import calibrate, estimate_chunks
from kb.ingest.manifest import Manifest
from kb.ingest.pipeline import to_remove
from kb.options import IngestScope

CALIBRATION_TEXTS = 16


@dataclass
class IngestPlan:
    kb: str
    kb_exists: bool
    added: list[dict[str, Any]] = field(default_factory=list)  # {"path", "bytes", "chunks_estimate"}
    updated: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # their files are gone
    pruned: list[str] = field(default_factory=list)  # files exist but the filters leave them out (--prune)
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    work_bytes: int = 0
    chunks_estimate: int = 0
    seconds_estimate: float = 0.0
    chunks_per_s: float | None = None
    rate_source: str = "nothing to embed"  # "past ingests" | "calibration" | "no estimate" | "nothing to embed"
    rate_detail: str = ""
    texts: list[str] = field(default_factory=list, repr=False)  # for a calibration run

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["texts"]
        return out


def plan(kb: str, manifest: Manifest | None, scope: IngestScope, chunker: Chunker, model_id: str) -> IngestPlan:
    found = discover(scope)
    result = IngestPlan(kb, manifest is not None)
    result.skipped = [{"path": p, "reason": r} for p, r in found.skipped]
    result.failed = [{"path": p, "reason": r} for p, r in found.failed]
    for path in found.files:
        source = str(path)
        try:
            st = path.stat()
            old = manifest.get(source) if manifest else None
            data = None
            if old is not None and old.model == model_id and old.chunker == chunker.version:
                if old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                    result.unchanged += 1
                    continue
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() == old.sha256:
                    result.unchanged += 1
                    continue
            data = path.read_bytes() if data is None else data
        except OSError as exc:
            result.failed.append({"path": source, "reason": f"cannot read ({exc.strerror})"})
            continue
        chunks, texts = estimate_chunks(path, data, chunker)
        entry = {"path": source, "bytes": st.st_size, "chunks_estimate": chunks}
        (result.added if old is None else result.updated).append(entry)
        result.work_bytes += st.st_size
        result.chunks_estimate += chunks
        if len(result.texts) < CALIBRATION_TEXTS:
            result.texts += texts
    if manifest is not None:
        for source in to_remove(found, manifest, scope.prune):
            (result.removed if is_gone(source) else result.pruned).append(source)
    return result


def estimate_time(result: IngestPlan, settings: Settings, model_id: str) -> None:
    """Fills in the plan's time estimate: from this machine's past ingests with this model
    if there are any, else from embedding a few chunk-sized passages of the files now."""
    from kb.errors import StoreError
    from kb.metrics.store import MetricsStore

    if not result.chunks_estimate:
        return
    past = None
    path = settings.home / "metrics.db"
    if path.exists():
        try:
            store = MetricsStore(path, untouched=True)
            try:
                past = store.ingest_rate(model_id)
            finally:
                store.close()
        except StoreError:  # unreadable or from an older kb: calibrate instead
            past = None
    if past is not None:
        result.chunks_per_s, runs = past
        result.rate_source = "past ingests"
        result.rate_detail = f"{runs} past ingest(s) with this model on this KB_HOME, end to end"
    elif settings.embedding.kind == "openai":
        # Calibrating would send the files' text to the service (and bill it), and fail the
        # dry run when the service is down: the plan stands without a time.
        result.rate_source = "no estimate"
        result.rate_detail = (
            "a dry run does not call the embedding service; after a first ingest it estimates from that"
        )
        return
    else:
        from kb.embedding import open_embedder

        # Not home.embedder: a dry run must not leave the graph runtimes' cache behind.
        encoder = open_embedder(settings, store_graph=False)
        result.chunks_per_s = calibrate(encoder.embed, result.texts, settings.chunk_tokens)
        result.rate_source = "calibration"
        result.rate_detail = "32 passages embedded just now; the encoder only, reading and storing add to it"
    result.seconds_estimate = float(f"{result.chunks_estimate / result.chunks_per_s:.3g}")
    result.chunks_per_s = float(f"{result.chunks_per_s:.3g}")
