"""One knowledge base: `kb list`, `kb remove`, `kb info`, `kb doctor`, `kb stats`."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.cli import context
from kb.cli import render as ui
from kb.cli.options import JSON
from kb.cli.render import catalogue as render
from kb.cli.render.stats import series as render_series
from kb.cli.render.stats import stats as render_stats


def list_documents(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List the documents in the knowledge base with their chunk counts."""
    rows = context.kb(ctx).documents()
    ui.emit_ndjson(rows) if as_json else render.documents(rows)


def remove(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A document, or a folder: everything ingested from under it."),
) -> None:
    """Remove documents and their chunks from the knowledge base."""
    docs, chunks = context.kb(ctx).remove(path)
    ui.out.print(f"removed {docs} document(s), {chunks} chunks")


def info(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Show where the knowledge base lives, its model, and its size."""
    data = context.kb(ctx).info()
    ui.emit_json(data.to_json()) if as_json else render.info(data)


def doctor(
    ctx: typer.Context,
    repair: bool = typer.Option(
        False, "--repair", help="Fix what is found: delete orphans, drop gone files, re-ingest or rebuild."
    ),
    as_json: bool = JSON,
) -> None:
    """Check the knowledge base: manifest, index health, orphan and missing chunks, gone files.

    Exits 0 when healthy (after --repair: when repaired), 1 when problems remain."""
    report = context.kb(ctx).doctor(repair=repair)
    ui.emit_json(report.to_json()) if as_json else render.doctor(report, repair)
    raise typer.Exit(0 if report.healthy else 1)


def stats(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", help="Only events in this window, e.g. 1h or 7d; earlier ones are the drift baseline."
    ),
    all_kbs: bool = typer.Option(False, "--all", help="Every knowledge base of this KB_HOME, not only --kb."),
    series: str | None = typer.Option(
        None, "--series", help="Over time instead: buckets of this width, e.g. 5m or 1h, over --since (default 24h)."
    ),
    as_json: bool = JSON,
) -> None:
    """Request counts, cache hits, latency percentiles, tokens and cost, errors, breakers and drift."""
    if series is not None:
        found = (
            context.library(ctx).stats_series(series, since) if all_kbs else context.kb(ctx).stats_series(series, since)
        )
        ui.emit_json(found) if as_json else render_series(found)
        return
    data = context.library(ctx).stats(since) if all_kbs else context.kb(ctx).stats(since)
    ui.emit_json(data) if as_json else render_stats(data)
