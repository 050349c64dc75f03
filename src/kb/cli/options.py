"""Options several commands share, spelled once."""

from __future__ import annotations

import typer

from kb.options import SearchFilter, SearchOptions

JSON = typer.Option(False, "--json", help="Machine-readable output (see README for the shapes).")
MODE = typer.Option(
    None,
    "--mode",
    help="hybrid: embeddings and keywords, fused; dense: embeddings; keyword: words, bm25 (default: search_mode).",
)
UNIQUE = typer.Option(
    None, "--unique-sources/--all-passages", help="At most one passage per document (default: unique_sources)."
)
SOURCE = typer.Option(
    None,
    "--source",
    metavar="GLOB",
    help="Only documents whose path matches GLOB (repeatable): '*.md', 'manuals/*.pdf', a folder ('manuals', "
    "'/srv/docs'). Quote it, or the shell expands it.",
)
TYPE = typer.Option(None, "--type", metavar="TYPES", help="Only documents of these types: md,pdf,... (repeatable).")
SINCE = typer.Option(
    None, "--since", metavar="DATE", help="Only documents modified since DATE: 2025-01-31, 2025-01-31T08:00Z or 7d."
)
NO_RERANK = typer.Option(False, "--no-rerank", help="Keep the fused order even when a [reranker] is configured.")


def search_options(
    k: int | None,
    mode: str | None,
    unique_sources: bool | None,
    source: list[str] | None,
    types: list[str] | None,
    since: str | None,
    no_rerank: bool,
) -> SearchOptions:
    """The SearchOptions of the flags above."""
    found = SearchFilter.of(source or (), types or (), since)
    return SearchOptions().merged(
        k=k, mode=mode, unique_sources=unique_sources, filter=found or None, rerank=False if no_rerank else None
    )
