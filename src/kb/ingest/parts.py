"""A background ingest in parts: the plan a job's worker makes, and what its parts add up to.

The job's worker plans under the manifest as it stands (discovery and the stat pass, as
`kb ingest` starts), then splits the files to read into parts of at most `part_files`
files and `PART_BYTES` bytes, so a big file is a part of its own. Each part is read,
chunked and embedded by whichever worker takes it, and committed under the write lock
(IngestPipeline.prepare / commit). The plan keeps the documents whose files were gone,
removed once every part is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from kb.ingest.discovery import discover
from kb.ingest.pipeline import IngestPipeline, IngestReport, to_remove
from kb.options import IngestScope

PART_BYTES = 8 << 20  # a part's files read at most this much, bar a single bigger file


@dataclass
class IngestSplit:
    report: IngestReport  # the planning's share: files seen, unchanged, skipped, failed
    parts: list[list[str]]  # the files of each part
    removals: list[str] = field(default_factory=list)  # documents whose files were gone
    work_bytes: int = 0  # bytes of the files to read

    def to_json(self) -> dict[str, Any]:
        return {"report": self.report.to_json(), "parts": len(self.parts), "removals": self.removals,
                "work_bytes": self.work_bytes}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IngestSplit:
        """The plan as a job records it (without the parts' files, which the parts hold)."""
        return cls(report_of(data["report"]), [], list(data.get("removals") or []), int(data.get("work_bytes") or 0))


def split(pipeline: IngestPipeline, scope: IngestScope, part_files: int) -> IngestSplit:
    """Plans an ingest of `scope` against the pipeline's manifest, reading no file."""
    found = discover(scope)
    report = pipeline.report
    report.files_seen = len(found.files)
    report.skipped = [{"path": p, "reason": r} for p, r in found.skipped]
    report.failed = [{"path": p, "reason": r} for p, r in found.failed]
    parts: list[list[str]] = []
    size = work = 0
    for item in pipeline.check_all(found.files):
        path, st, _ = item
        if not parts or len(parts[-1]) >= part_files or (parts[-1] and size + st.st_size > PART_BYTES):
            parts.append([])
            size = 0
        parts[-1].append(str(path))
        size += st.st_size
        work += st.st_size
    return IngestSplit(report, parts, to_remove(found, pipeline.manifest, scope.prune), work)


def report_of(data: dict[str, Any]) -> IngestReport:
    known = {f.name for f in fields(IngestReport)}
    return IngestReport(**{k: v for k, v in data.items() if k in known})


def merged(reports: list[IngestReport]) -> IngestReport:
    """The reports of a job's planning and parts, added up."""
    out = IngestReport()
    for report in reports:
        for f in fields(IngestReport):
            if f.name == "seconds":
                continue
            value = getattr(report, f.name)
            setattr(out, f.name, getattr(out, f.name) + value)
    return out
