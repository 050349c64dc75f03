"""The long-running front-ends: `kb serve` (HTTP), `kb worker` (the queue), `kb mcp` (MCP)."""

from __future__ import annotations

import typer

from kb.cli import context
from kb.cli import render as ui


def worker(
    ctx: typer.Context,
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=64, help="Jobs run at once (default: queue.workers)."
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        max=256,
        help="Threads of this worker's encoder (default: embedding.threads, else one per core); "
        "several workers on one machine share its cores with e.g. --threads 1 each.",
    ),
) -> None:
    """Run background jobs from the queue until stopped (Ctrl-C finishes the running ones)."""
    from dataclasses import replace

    from kb.worker import run_worker

    settings = context.of(ctx).settings()
    if threads is not None:
        settings = replace(settings, embedding=replace(settings.embedding, threads=threads))
    run_worker(settings, workers, ui.note)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (not loopback: needs KB_SERVE_TOKENS)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Server processes. They share the cores: each encodes with cores/N threads (unless OMP_NUM_THREADS "
        "is set). One process answers one batch of searches at a time; N processes on N cores answer the most.",
    ),
    worker: bool = typer.Option(False, "--worker", help="Also run queued jobs in this process (one machine)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level: critical, error, warning, info."),
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) until stopped; Ctrl-C finishes in-flight requests."""
    from kb.service.server import serve as run_server

    run_server(context.of(ctx).settings(), host, port, workers, worker, log_level, ui.note)


def mcp(ctx: typer.Context) -> None:
    """Serve the knowledge base to AI assistants: an MCP server (Model Context Protocol, stdio).

    Tools: search (passages), ask (an answer with citations) and list_documents,
    each with an optional kb argument naming another knowledge base of KB_HOME.

    Register it as an MCP server in a desktop assistant or coding agent, e.g.

    {"mcpServers": {"notes": {"command": "kb", "args": ["--kb", "notes", "mcp"]}}}

    Give kb's full path if the client does not find it, and KB_HOME in "env" if
    yours is not the default. Stdout carries only protocol messages."""
    from kb import mcp_server

    options = context.of(ctx)
    settings = options.settings()
    server, kbs = mcp_server.build(settings, debug=options.debug)
    ui.note(f"kb mcp: serving knowledge base {settings.kb!r} of {settings.home} over stdio")
    if not kbs.home.exists(settings.kb):
        ui.warning(
            f"knowledge base {settings.kb!r} does not exist yet; create it with `kb --kb {settings.kb} ingest PATH`"
        )
    try:
        server.run("stdio")
    finally:
        kbs.close()
