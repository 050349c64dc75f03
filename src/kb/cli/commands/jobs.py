"""`kb jobs`: background jobs (`kb ingest --background` queues one)."""

from __future__ import annotations

import typer

from kb.cli import context
from kb.cli import render as ui
from kb.cli.options import JSON
from kb.cli.render import jobs as render
from kb.options import job_state

app = typer.Typer(help="Background jobs: list, show, retry (`kb ingest --background` queues one).",
                  invoke_without_command=True)  # fmt: skip


@app.callback()
def jobs_list(
    ctx: typer.Context,
    all_kbs: bool = typer.Option(False, "--all", help="Jobs of every knowledge base, not only --kb."),
    state: str | None = typer.Option(None, "--state", help="Only jobs in this state: queued, running, done, failed."),
    as_json: bool = JSON,
) -> None:
    """List recent background jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    library = context.library(ctx)
    wanted = None if state is None else job_state(state)
    rows = [j.to_json() for j in library.jobs(None if all_kbs else library.settings.kb, wanted)]
    if as_json:
        for row in rows:
            ui.emit_json(row)
    else:
        render.jobs(rows, state)


@app.command("show")
def jobs_show(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., help="The job id (`kb jobs` lists them)."),
    as_json: bool = JSON,
) -> None:
    """Show one job: state, progress, the ingest report and its webhook deliveries."""
    job = context.library(ctx).job(job_id).to_json()
    ui.emit_json(job) if as_json else render.job(job)


@app.command("retry")
def jobs_retry(
    ctx: typer.Context, job_id: str = typer.Argument(..., help="A done or failed job."), as_json: bool = JSON
) -> None:
    """Queue a finished job again (a failed ingest resumes where it stopped)."""
    job = context.library(ctx).retry_job(job_id).to_json()
    ui.emit_json(job) if as_json else render.job_queued(job)
