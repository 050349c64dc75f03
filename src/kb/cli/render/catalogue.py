"""What a knowledge base holds: documents, the knowledge bases of a home, info, doctor's report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kb.cli.render import err, note, out, short, table

if TYPE_CHECKING:
    from kb.doctor import DoctorReport
    from kb.results import DocumentInfo, KbInfo, KbSummary


def documents(rows: list[DocumentInfo]) -> None:
    if not rows:
        note("no documents yet; add some with `kb ingest PATH`")
        return
    table(("source", "chunks", "bytes", "ingested"),
          [(short(r.source), str(r.chunks), str(r.bytes), r.ingested_at) for r in rows], right=("chunks", "bytes"))  # fmt: skip


def info(data: KbInfo) -> None:
    for key, value in data.to_json().items():
        out.print(f"[bold]{key:>10}[/]  {value}")


def knowledge_bases(rows: list[KbSummary]) -> None:
    if not rows:
        note("no knowledge bases yet; create one with `kb ingest PATH` (or `kb --kb NAME ingest PATH`)")
        return
    table(("kb", "documents", "chunks", "bytes"), [(r.kb, str(r.documents), str(r.chunks), str(r.bytes)) for r in rows],
          right=("documents", "chunks", "bytes"))  # fmt: skip


def doctor(report: DoctorReport, repaired: bool) -> None:
    for line in report.repaired:
        out.print(f"repaired: {line}", markup=False)
    store = "?" if report.chunks_in_store is None else report.chunks_in_store
    out.print(
        f"{report.kb}: {report.documents} documents, {report.chunks_in_manifest} chunks in the manifest, "
        f"{store} in the store"
    )
    for p in report.problems:
        where = f"{short(p.source)}: " if p.source else ""
        err.print(f"  problem ({p.kind}): {where}{p.detail}", markup=False)
    for q in report.quality:
        err.print(f"  quality: {short(q['source'])}: {'; '.join(q['warnings'])}", markup=False)
    if report.healthy:
        out.print("healthy")
    elif not repaired:
        out.print(f"{len(report.problems)} problems; `kb doctor --repair` fixes them")
