"""`kb kbs`: the knowledge bases of this KB_HOME."""

from __future__ import annotations

import sys

import typer

from kb.cli import context
from kb.cli import render as ui
from kb.cli.options import JSON
from kb.cli.render import catalogue as render
from kb.errors import InputError

app = typer.Typer(help="List and delete the knowledge bases of this KB_HOME.", invoke_without_command=True)


@app.callback()
def kbs_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List the knowledge bases of this KB_HOME with their sizes (`kb kbs delete NAME` deletes one)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = context.library(ctx).knowledge_bases()
    ui.emit_ndjson(rows) if as_json else render.knowledge_bases(rows)


@app.command("delete")
def kbs_delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The knowledge base to delete, with all its documents and index."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a knowledge base: its manifest and vector index (your files are not touched)."""
    library = context.library(ctx)
    library.home.require(name)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(f"deleting {name!r} needs confirmation; pass --yes")
        typer.confirm(f"Delete knowledge base {name!r} and its index?", abort=True, err=True)
    library.delete(name)
    ui.out.print(f"deleted knowledge base {name!r}")
