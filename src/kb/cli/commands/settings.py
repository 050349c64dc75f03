"""`kb config` and `kb cache`."""

from __future__ import annotations

import typer

from kb.cli import context
from kb.cli import render as ui

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
cache_app = typer.Typer(help="Manage the answer and embedding cache.", no_args_is_help=True)


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the effective settings (file, environment and defaults merged), secrets masked."""
    ui.pretty_json(context.of(ctx).settings().public_dict())


@cache_app.command("clear")
def cache_clear(ctx: typer.Context) -> None:
    """Delete every cached answer and query embedding."""
    n = context.library(ctx).clear_cache()
    ui.out.print(f"cleared {n} cache entries")
