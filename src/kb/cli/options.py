"""Options several commands share, spelled once."""

from __future__ import annotations

import typer

JSON = typer.Option(False, "--json", help="Machine-readable output (see README for the shapes).")
MODE = typer.Option(
    None,
    "--mode",
    help="hybrid: embeddings and keywords, fused; dense: embeddings; keyword: words, bm25 (default: search_mode).",
)
UNIQUE = typer.Option(
    None, "--unique-sources/--all-passages", help="At most one passage per document (default: unique_sources)."
)
