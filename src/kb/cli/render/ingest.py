"""Ingest: the progress bar, the report, a watch's batches, a dry run's plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kb.cli.render import err, out, short


class IngestProgress:
    """A rich progress bar: files, chunks and an ETA by work (bytes of the changed files,
    see kb.ingest.progress); silent when stderr is not a TTY."""

    def __init__(self) -> None:
        from kb.ingest.progress import WorkMeter

        self.meter = WorkMeter()
        self._bar: Any = None

    def start(self, total_files: int) -> None:
        self.meter.start(total_files)
        if not err.is_terminal:
            return
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        from kb.ingest.progress import format_eta

        meter = self.meter

        class Eta(ProgressColumn):
            def render(self, task) -> Text:
                return Text(format_eta(meter.eta_s()))

        self._bar = Progress(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            TextColumn("{task.fields[files]} files"),
            TextColumn("{task.fields[chunks]} chunks embedded"),
            Eta(),
            TextColumn("{task.fields[name]}"),
            console=err,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("ingest", total=None, files=self._files(), chunks=0, name="")

    def _files(self) -> str:
        return f"{self.meter.files_done}/{self.meter.files_total}"

    def planned(self, work_bytes: int) -> None:
        self.meter.planned(work_bytes)
        if self._bar:
            self._bar.update(self._task, total=max(work_bytes, 1), completed=0)

    def advance(self, path: str, chunks: int) -> None:
        self.meter.advance(path, chunks)
        if self._bar:
            self._bar.update(self._task, files=self._files(), name=Path(path).name[:40])

    def embedded(self, chunks: int) -> None:
        """As each batch lands, so a big file shows its progress before it is done."""
        self.meter.embedded(chunks)
        if self._bar:
            self._bar.update(self._task, chunks=self.meter.chunks)

    def worked(self, work_bytes: float) -> None:
        self.meter.worked(work_bytes)
        if self._bar:
            self._bar.update(self._task, completed=self.meter.work_done)

    def finish(self) -> None:
        if self._bar:
            self._bar.stop()


def ingest_report(report) -> None:
    r = report
    out.print(
        f"{r.files_seen} files: {r.added} added, {r.updated} updated, {r.unchanged} unchanged, "
        f"{r.removed} removed, {len(r.failed)} failed; {r.chunks_added} chunks added, "
        f"{r.chunks_removed} removed in {r.seconds:.1f}s"
    )
    for item in r.failed:
        err.print(f"  failed: {short(item['path'])}: {item['reason']}", markup=False)
    for item in r.skipped:
        err.print(f"  skipped: {short(item['path'])}: {item['reason']}", markup=False)
    for source in r.removed_sources:
        err.print(f"  removed: {short(source)}", markup=False)
    for item in r.warnings:
        err.print(f"  warning: {short(item['path'])}: {item['warning']}", markup=False)


def watch_batch(report) -> None:
    """One line per applied batch of a watched folder; details on stderr as for an ingest."""
    import time

    r = report
    out.print(
        f"{time.strftime('%H:%M:%S')} {r.added} added, {r.updated} updated, {r.removed} removed, "
        f"{len(r.failed)} failed; {r.chunks_added} chunks added, {r.chunks_removed} removed in {r.seconds:.1f}s",
        markup=False,
    )
    for item in r.failed:
        err.print(f"  failed: {short(item['path'])}: {item['reason']}", markup=False)
    for source in r.removed_sources:
        err.print(f"  removed: {short(source)}", markup=False)
    for source in r.held:
        err.print(f"  still being written, later: {short(source)}", markup=False)


def watch_stopped(summary: dict) -> None:
    out.print(
        f"stopped ({summary['signal']}) after {summary['batches']} batches: {summary['added']} added, "
        f"{summary['updated']} updated, {summary['removed']} removed",
        markup=False,
    )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def ingest_plan(plan) -> None:
    state = "exists" if plan.kb_exists else "does not exist yet"
    out.print(f"dry run: nothing written; knowledge base {plan.kb!r} {state}", markup=False)
    out.print(
        f"would add {len(plan.added)}, update {len(plan.updated)}, remove {len(plan.removed)}"
        + (f", prune {len(plan.pruned)}" if plan.pruned else "")
        + f"; {plan.unchanged} unchanged, {len(plan.failed)} failed",
        markup=False,
    )
    line = f"about {plan.chunks_estimate} chunks from {_size(plan.work_bytes)}"
    if plan.chunks_per_s:
        line += (
            f", about {plan.seconds_estimate:g}s on this machine at {plan.chunks_per_s:g} chunks/s "
            f"({plan.rate_source}: {plan.rate_detail})"
        )
    elif plan.rate_detail:
        line += f" (no time estimate: {plan.rate_detail})"
    if plan.updated:
        line += "; an update embeds only the chunks whose text changed, so it may take less"
    out.print(line, markup=False)
    for verb, items in (("add", plan.added), ("update", plan.updated)):
        for item in items:
            out.print(f"  {verb}: {short(item['path'])} (~{item['chunks_estimate']} chunks)", markup=False)
    for verb, sources in (("remove", plan.removed), ("prune", plan.pruned)):
        for source in sources:
            out.print(f"  {verb}: {short(source)}", markup=False)
    for item in plan.failed:
        err.print(f"  failed: {short(item['path'])}: {item['reason']}", markup=False)
    for item in plan.skipped:
        err.print(f"  skipped: {short(item['path'])}: {item['reason']}", markup=False)
