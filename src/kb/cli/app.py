"""kb commands. Each one: parse arguments → call one KnowledgeBase method → render.

Only typer, rich and kb's light modules are imported at start-up; torch, chromadb and the
model load inside the facade when a command needs them.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import typer

from kb import __version__, logs
from kb.cli import render
from kb.cli.eval import eval_app
from kb.errors import InputError, KbError

app = typer.Typer(
    help="Build and query knowledge bases from your own documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
cache_app = typer.Typer(help="Manage the answer and embedding cache.", no_args_is_help=True)
kbs_app = typer.Typer(help="List and delete the knowledge bases of this KB_HOME.", invoke_without_command=True)
jobs_app = typer.Typer(help="Background jobs: list, show, retry (`kb ingest --background` queues one).",
                       invoke_without_command=True)  # fmt: skip
app.add_typer(config_app, name="config")
app.add_typer(cache_app, name="cache")
app.add_typer(kbs_app, name="kbs")
app.add_typer(jobs_app, name="jobs")
app.add_typer(eval_app, name="eval")

_options: dict = {"kb": None, "debug": False}
JSON = typer.Option(False, "--json", help="Machine-readable output (see README for the shapes).")
MODE = typer.Option(
    None,
    "--mode",
    help="hybrid: embeddings and keywords, fused; dense: embeddings; keyword: words, bm25 (default: search_mode).",
)
UNIQUE = typer.Option(
    None, "--unique-sources/--all-passages", help="At most one passage per document (default: unique_sources)."
)


def _settings():
    from kb.config import load_settings

    settings = load_settings(kb=_options["kb"])
    for warning in settings.warnings:
        render.warning(warning)
    return settings


def _kb():
    from kb.facade import KnowledgeBase

    kb = KnowledgeBase(_settings())
    kb.on_wait = kb.on_notice = render.note
    return kb


def _version(value: bool) -> None:
    if value:
        print(f"kb {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    kb: str | None = typer.Option(None, "--kb", help="Knowledge base name (default: 'default', or $KB_NAME)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and library messages."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    _options.update(kb=kb, debug=debug)


@app.command()
def ingest(
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
    kb = _kb()
    if dry_run:
        plan = kb.plan_ingest(_paths(paths), include, exclude, hidden, prune)
        render.emit_json(plan.to_json()) if as_json else render.ingest_plan(plan)
        raise typer.Exit(1 if plan.failed else 0)
    if background:
        job = kb.enqueue_ingest(_paths(paths), include, exclude, hidden, prune)
        render.emit_json(job) if as_json else render.job_queued(job)
        return
    missing = [p for p in _paths(paths) if watch and not p.expanduser().exists()]
    if missing:
        raise InputError(f"--watch: {missing[0]} does not exist; watch an existing file or folder")
    progress = None if as_json else render.IngestProgress()
    report = kb.ingest(_paths(paths), include, exclude, hidden, prune, progress=progress)
    if watch:
        render.emit_json({"event": "ingest", **report.to_json()}) if as_json else render.ingest_report(report)
        raise typer.Exit(_watch(kb, _paths(paths), include, exclude, hidden, prune, settle, as_json))
    render.emit_json(report.to_json()) if as_json else render.ingest_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _watch(kb, paths: list[Path], include, exclude, hidden: bool, prune: bool, settle: float, as_json: bool) -> int:
    """The --watch loop: the first SIGINT or SIGTERM lets the batch in progress finish."""
    import signal
    import threading

    stop = threading.Event()
    caught: list[int] = []

    def on_signal(signum, frame) -> None:
        if caught and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: now; the interrupted batch resumes next run
        caught.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    totals = {"batches": 0, "added": 0, "updated": 0, "removed": 0}
    render.note(f"watching {', '.join(str(p) for p in paths)} for changes; Ctrl-C stops")
    try:
        for report in kb.watch(paths, stop, include, exclude, hidden, prune, settle):
            totals["batches"] += 1
            for key in ("added", "updated", "removed"):
                totals[key] += getattr(report, key)
            if as_json:
                render.emit_json({"event": "batch", **report.to_json()})
            else:
                render.watch_batch(report)
            sys.stdout.flush()  # a line per batch, also into a pipe
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    name = signal.Signals(caught[0]).name if caught else "stopped"
    summary = {"event": "stopped", "signal": name, **totals}
    render.emit_json(summary) if as_json else render.watch_stopped(summary)
    return 130 if caught and caught[0] == signal.SIGINT else 0


def _paths(given: list[str]) -> list[Path]:
    if any(not p.strip() for p in given):
        raise InputError("an empty path was given; name a file or folder (use . for the current folder)")
    return [Path(p) for p in given]


def _stdin_text() -> str:
    data = (
        sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8", "surrogateescape")
    )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"standard input is not valid UTF-8 (byte {exc.start}); pass UTF-8 text") from None


def _queries(query: str) -> list[str]:
    if query != "-":
        return [query]
    return [line.strip() for line in _stdin_text().splitlines() if line.strip()]


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for; '-' reads one query per line from stdin."),
    k: int | None = typer.Option(
        None, "-k", "--top-k", min=1, max=100, help="How many passages to show (default: top_k, 5)."
    ),
    mode: str | None = MODE,
    unique_sources: bool | None = UNIQUE,
    as_json: bool = JSON,
) -> None:
    """Show the passages that best match QUERY."""
    queries = _queries(query)
    if not queries:
        raise InputError("no queries on standard input; pass one per line")
    results = _kb().search(queries, k, mode, unique_sources)
    for q, hits in zip(queries, results):
        if as_json:
            for hit in hits:
                render.emit_json(hit.to_json(q))
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
    mode: str | None = MODE,
    unique_sources: bool | None = UNIQUE,
    as_json: bool = JSON,
) -> None:
    """Answer QUESTION from the knowledge base, with numbered citations."""
    text = _stdin_text() if question == "-" else question
    kb = _kb()
    stream = render.MarkdownStream() if render.out.is_terminal and not (as_json or no_stream) else None
    try:
        answer = kb.ask(text, top_k, provider, not no_cache, stream=stream, mode=mode, unique_sources=unique_sources)
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
    all_kbs: bool = typer.Option(False, "--all", help="Every knowledge base of this KB_HOME, not only --kb."),
    as_json: bool = JSON,
) -> None:
    """Request counts, cache hits, latency percentiles, tokens and cost, errors, breakers and drift."""
    data = _kb().stats(since, all_kbs=all_kbs)
    render.emit_json(data) if as_json else render.stats(data)


@app.command("mcp")
def mcp_server() -> None:
    """Serve the knowledge base to AI assistants: an MCP server (Model Context Protocol, stdio).

    Tools: search (passages), ask (an answer with citations) and list_documents,
    each with an optional kb argument naming another knowledge base of KB_HOME.

    Register it as an MCP server in a desktop assistant or coding agent, e.g.

    {"mcpServers": {"notes": {"command": "kb", "args": ["--kb", "notes", "mcp"]}}}

    Give kb's full path if the client does not find it, and KB_HOME in "env" if
    yours is not the default. Stdout carries only protocol messages."""
    from kb import mcp_server

    settings = _settings()
    server, kbs = mcp_server.build(settings, debug=_options["debug"])
    render.note(f"kb mcp: serving knowledge base {settings.kb!r} of {settings.home} over stdio")
    if not kbs.home.exists(settings.kb):
        render.warning(
            f"knowledge base {settings.kb!r} does not exist yet; create it with `kb --kb {settings.kb} ingest PATH`"
        )
    try:
        server.run("stdio")
    finally:
        kbs.close()


@kbs_app.callback()
def kbs_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List the knowledge bases of this KB_HOME with their sizes (`kb kbs delete NAME` deletes one)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _kb().knowledge_bases()
    if as_json:
        for row in rows:
            render.emit_json(row)
    else:
        render.knowledge_bases(rows)


@kbs_app.command("delete")
def kbs_delete(
    name: str = typer.Argument(..., help="The knowledge base to delete, with all its documents and index."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a knowledge base: its manifest and vector index (your files are not touched)."""
    kb = _kb()
    kb.home.require(name)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(f"deleting {name!r} needs confirmation; pass --yes")
        typer.confirm(f"Delete knowledge base {name!r} and its index?", abort=True, err=True)
    kb.delete_knowledge_base(name)
    render.out.print(f"deleted knowledge base {name!r}")


@jobs_app.callback()
def jobs_list(
    ctx: typer.Context,
    all_kbs: bool = typer.Option(False, "--all", help="Jobs of every knowledge base, not only --kb."),
    state: str | None = typer.Option(None, "--state", help="Only jobs in this state: queued, running, done, failed."),
    as_json: bool = JSON,
) -> None:
    """List recent background jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    if state is not None and state not in ("queued", "running", "done", "failed"):
        raise InputError(f"--state {state!r}: use queued, running, done or failed")
    rows = _kb().jobs(all_kbs=all_kbs, state=state)
    if as_json:
        for row in rows:
            render.emit_json(row)
    else:
        render.jobs(rows)


@jobs_app.command("show")
def jobs_show(
    job_id: str = typer.Argument(..., help="The job id (`kb jobs` lists them)."), as_json: bool = JSON
) -> None:
    """Show one job: state, progress, the ingest report and its webhook deliveries."""
    job = _kb().job(job_id)
    render.emit_json(job) if as_json else render.job(job)


@jobs_app.command("retry")
def jobs_retry(job_id: str = typer.Argument(..., help="A done or failed job."), as_json: bool = JSON) -> None:
    """Queue a finished job again (a failed ingest resumes where it stopped)."""
    job = _kb().retry_job(job_id)
    render.emit_json(job) if as_json else render.job_queued(job)


@app.command()
def worker(
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=64, help="Jobs run at once (default: queue.workers)."
    ),
) -> None:
    """Run background jobs from the queue until stopped (Ctrl-C finishes the running ones)."""
    from kb.jobs.worker import run_worker

    run_worker(_settings(), workers, render.note)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (not loopback: needs KB_SERVE_TOKENS)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
    worker: bool = typer.Option(False, "--worker", help="Also run queued jobs in this process (one machine)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level: critical, error, warning, info."),
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) until stopped; Ctrl-C finishes in-flight requests."""
    from kb.service.server import serve as run_server

    run_server(_settings(), host, port, workers, worker, log_level)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (file, environment and defaults merged), secrets masked."""
    render.pretty_json(_settings().public_dict())


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached answer and query embedding."""
    n = _kb().clear_cache()
    render.out.print(f"cleared {n} cache entries")


def _check_arguments(args: list[str]) -> None:
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise InputError(f"argument {shown!r} is not valid UTF-8; kb takes UTF-8 text and file names") from None


def _run(args: list[str]) -> int:
    """Runs the command; usage errors become one line like every other error."""
    try:  # typer >= 0.22 carries its own copy of click
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as click_errors  # type: ignore[no-redef]

    aborts = tuple({typer.Abort, getattr(click_errors, "Abort", typer.Abort)})
    exits = tuple({typer.Exit, getattr(click_errors, "Exit", typer.Exit)})
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="kb", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "")
        return 0
    except click_errors.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        raise InputError(exc.format_message() + hint) from exc
    except aborts as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        raise KbError("cancelled") from exc
    except click_errors.ClickException as exc:
        render.error(exc.format_message())
        return exc.exit_code
    except exits as exc:
        return exc.exit_code
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    _options["debug"] = "--debug" in args
    logs.configure(debug=_options["debug"])
    try:
        _check_arguments(args)
        code = _run(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below and not at exit
    except KbError as exc:
        if _options["debug"]:
            traceback.print_exc()
        render.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        render.error("interrupted; everything committed before the interruption is kept")
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our output went away (`kb search ... | head`): not an error of kb's.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except Exception as exc:  # a bug in kb: say so in one line; --debug shows where
        if _options["debug"]:
            traceback.print_exc()
        render.error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it")
        sys.exit(70)
    sys.exit(code)
