"""`kb ingest`: now, in the background, as a dry run, or watching."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from kb.cli import context
from kb.cli import render as ui
from kb.cli.options import JSON
from kb.cli.render import ingest as render
from kb.cli.render import jobs as render_jobs
from kb.errors import InputError
from kb.options import IngestScope

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase


def ingest(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Files and folders (folders are read recursively)."),
    include: list[str] = typer.Option([], "--include", help="Only read files matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip files and folders matching this glob (repeatable)."),
    hidden: bool = typer.Option(False, "--hidden", help="Also read hidden files and folders."),
    prune: bool = typer.Option(
        False, "--prune", help="Also remove documents under these folders that the filters leave out (listed)."
    ),
    background: bool = typer.Option(
        False, "--background", help="Queue the ingest for `kb worker` and print the job id at once."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only show what would be added, updated and removed, with estimated chunks and time."
    ),
    watch: bool = typer.Option(
        False, "--watch", help="After ingesting, keep watching and apply changes as they settle, until stopped."
    ),
    settle: float = typer.Option(
        1.0, "--settle", min=0.1, max=60, help="--watch: read a changed file once it held still this many seconds."
    ),
    as_json: bool = JSON,
) -> None:
    """Add documents (PDF, Office, OpenDocument, EPUB, notebooks, CSV, e-mail, Markdown, HTML, text).

    Re-running updates only what changed (README lists the formats and what each keeps).

    Documents whose files were deleted are removed. Filters (--include, --exclude, hidden
    files) narrow what is read, never what is kept, unless --prune is given. --dry-run
    writes nothing (not even a new knowledge base's folder).

    --watch prints one line per applied batch (--json: one object per line). Ctrl-C or
    SIGTERM stops after the batch in progress, with a summary; the exit code is 130 after
    Ctrl-C (SIGINT), as for any interrupted command, and 0 after SIGTERM, a requested
    shutdown. A second Ctrl-C stops at once (the next run resumes the batch)."""
    if sum((dry_run, background, watch)) > 1:
        raise InputError("--dry-run, --background and --watch do not go together; pick one")
    scope = IngestScope.of(_paths(paths), include, exclude, hidden, prune)
    if background:
        job = context.library(ctx).enqueue_ingest(None, scope)
        ui.emit_json(job.to_json()) if as_json else render_jobs.job_queued(job.to_json())
        return
    kb = context.kb(ctx)
    if dry_run:
        plan = kb.plan_ingest(scope)
        ui.emit_json(plan.to_json()) if as_json else render.ingest_plan(plan)
        raise typer.Exit(1 if plan.failed else 0)
    missing = [p for p in scope.paths if watch and not p.expanduser().exists()]
    if missing:
        raise InputError(f"--watch: {missing[0]} does not exist; watch an existing file or folder")
    report = kb.ingest(scope, progress=None if as_json else render.IngestProgress())
    if watch:
        ui.emit_json({"event": "ingest", **report.to_json()}) if as_json else render.ingest_report(report)
        raise typer.Exit(_watch(kb, scope, settle, as_json))
    ui.emit_json(report.to_json()) if as_json else render.ingest_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _watch(kb: KnowledgeBase, scope: IngestScope, settle: float, as_json: bool) -> int:
    """The --watch loop: the first SIGINT or SIGTERM lets the batch in progress finish."""
    stop = threading.Event()
    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if caught and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: now; the interrupted batch resumes next run
        caught.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    totals = {"batches": 0, "added": 0, "updated": 0, "removed": 0}
    ui.note(f"watching {', '.join(str(p) for p in scope.paths)} for changes; Ctrl-C stops")
    try:
        for report in kb.watch(scope, stop, settle):
            totals["batches"] += 1
            for key in ("added", "updated", "removed"):
                totals[key] += getattr(report, key)
            if as_json:
                ui.emit_json({"event": "batch", **report.to_json()})
            else:
                render.watch_batch(report)
            sys.stdout.flush()  # a line per batch, also into a pipe
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    name = signal.Signals(caught[0]).name if caught else "stopped"
    summary = {"event": "stopped", "signal": name, **totals}
    ui.emit_json(summary) if as_json else render.watch_stopped(summary)
    return 130 if caught and caught[0] == signal.SIGINT else 0


def _paths(given: list[str]) -> list[Path]:
    if any(not p.strip() for p in given):
        raise InputError("an empty path was given; name a file or folder (use . for the current folder)")
    return [Path(p) for p in given]
