"""kb commands. Each one: parse arguments → call one KnowledgeBase method → render.

Only typer, rich and kb's light modules are imported at start-up; torch, chromadb and the
model load inside the facade when a command needs them.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import typer

from kb import __version__, logs
from kb.cli import render
from kb.errors import KbError

app = typer.Typer(
    help="Build and query knowledge bases from your own documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
cache_app = typer.Typer(help="Manage the answer and embedding cache.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(cache_app, name="cache")

_options: dict = {"kb": None, "debug": False}
JSON = typer.Option(False, "--json", help="Machine-readable output (see README for the shapes).")


def _kb():
    from kb.config import load_settings
    from kb.facade import KnowledgeBase

    kb = KnowledgeBase(load_settings(kb=_options["kb"]))
    kb.on_wait = render.note
    return kb


def _version(value: bool) -> None:
    if value:
        print(f"kb {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    kb: str | None = typer.Option(None, "--kb", help="Knowledge base name (default: 'default', or $KB_NAME)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    _options.update(kb=kb, debug=debug)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and folders (folders are read recursively)."),
    include: list[str] = typer.Option([], "--include", help="Only files matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip files and folders matching this glob (repeatable)."),
    hidden: bool = typer.Option(False, "--hidden", help="Also read hidden files and folders."),
    as_json: bool = JSON,
) -> None:
    """Add documents (PDF, Markdown, HTML, text); re-running updates only what changed.

    Re-ingesting a folder mirrors it: files that disappeared from it are removed."""
    kb = _kb()
    report = kb.ingest(paths, include, exclude, hidden, progress=None if as_json else render.IngestProgress())
    render.emit_json(report.to_json()) if as_json else render.ingest_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _queries(query: str) -> list[str]:
    if query != "-":
        return [query]
    return [line.strip() for line in sys.stdin if line.strip()]


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for; '-' reads one query per line from stdin."),
    k: int | None = typer.Option(
        None, "-k", "--top-k", min=1, max=100, help="How many passages to show (default: top_k, 5)."
    ),
    as_json: bool = JSON,
) -> None:
    """Show the passages most similar to QUERY."""
    queries = _queries(query)
    results = _kb().search(queries, k)
    for q, hits in zip(queries, results):
        if as_json:
            for hit in hits:
                render.emit_json(render.hit_json(q, hit))
        else:
            render.hits_table(q, hits)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question; '-' reads it from stdin."),
    top_k: int | None = typer.Option(
        None, "--top-k", "-k", min=1, max=50, help="Passages given to the model (default 5)."
    ),
    provider: str | None = typer.Option(None, "--provider", help="Use only this provider from the chain."),
    no_stream: bool = typer.Option(
        False, "--no-stream", help="Print the answer when complete instead of streaming it."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the answer cache."),
    as_json: bool = JSON,
) -> None:
    """Answer QUESTION from the knowledge base, with numbered citations."""
    text = sys.stdin.read() if question == "-" else question
    stream = render.MarkdownStream() if render.out.is_terminal and not (as_json or no_stream) else None
    try:
        answer = _kb().ask(text, top_k=top_k, provider=provider, use_cache=not no_cache, stream=stream)
    except BaseException:
        if stream:
            stream.close()
        raise
    if stream:
        stream.close(final=answer.answer)
    if as_json:
        render.emit_json(answer.to_json())
    else:
        render.answer(answer, streamed=bool(stream and stream.parts))


@app.command("list")
def list_documents(as_json: bool = JSON) -> None:
    """List the documents in the knowledge base with their chunk counts."""
    rows = _kb().documents()
    if as_json:
        for row in rows:
            render.emit_json(row)
    else:
        render.documents(rows)


@app.command()
def remove(
    path: Path = typer.Argument(..., help="A document, or a folder: everything ingested from under it."),
) -> None:
    """Remove documents and their chunks from the knowledge base."""
    docs, chunks = _kb().remove(path)
    render.out.print(f"removed {docs} document(s), {chunks} chunks")


@app.command()
def info(as_json: bool = JSON) -> None:
    """Show where the knowledge base lives, its model, and its size."""
    data = _kb().info()
    render.emit_json(data) if as_json else render.info(data)


@app.command()
def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Fix what is found: delete orphans, drop gone files, re-ingest or rebuild."
    ),
    as_json: bool = JSON,
) -> None:
    """Check the knowledge base: manifest, index health, orphan and missing chunks, gone files.

    Exits 0 when healthy (after --repair: when repaired), 1 when problems remain."""
    report = _kb().doctor(repair=repair)
    render.emit_json(report.to_json()) if as_json else render.doctor(report, repair)
    raise typer.Exit(0 if report.healthy else 1)


@app.command()
def stats(
    since: str | None = typer.Option(
        None, "--since", help="Only events in this window, e.g. 1h or 7d; earlier ones are the drift baseline."
    ),
    as_json: bool = JSON,
) -> None:
    """Request counts, cache hits, latency percentiles, tokens and cost, errors, breakers and drift."""
    data = _kb().stats(since)
    render.emit_json(data) if as_json else render.stats(data)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (file, environment and defaults merged), secrets masked."""
    from kb.config import load_settings

    render.pretty_json(load_settings(kb=_options["kb"]).public_dict())


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached answer and query embedding."""
    n = _kb().clear_cache()
    render.out.print(f"cleared {n} cache entries")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    logs.configure(debug="--debug" in args)
    try:
        app(args=argv, prog_name="kb")
    except KbError as exc:
        if _options["debug"]:
            traceback.print_exc()
        render.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        render.error("interrupted; everything committed before the interruption is kept")
        sys.exit(130)
