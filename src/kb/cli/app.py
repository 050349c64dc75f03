"""kb commands: the root application, its options (--kb, --debug, --version), and how a
command's outcome becomes output and an exit code.

Only typer, rich and kb's light modules are imported at start-up; torch, chromadb and the
model load inside the core when a command needs them. The commands live in commands/, one
module per group; all terminal output in render/.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from kb import logs
from kb.cli import advice, context
from kb.cli import render as ui
from kb.cli.commands import chat, documents, ingest, jobs, kbs, search, serving, settings, tokens
from kb.cli.commands.evaluation import eval_app
from kb.errors import InputError, KbError
from kb.version import __version__

app = typer.Typer(
    help="Build and query knowledge bases from your own documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(ingest.ingest)
app.command()(search.search)
app.command()(search.ask)
app.command()(chat.chat)
app.command("list")(documents.list_documents)
app.command()(documents.remove)
app.command()(documents.info)
app.command()(documents.doctor)
app.command()(documents.stats)
app.command("mcp")(serving.mcp)
app.command()(serving.worker)
app.command()(serving.serve)
app.add_typer(settings.config_app, name="config")
app.add_typer(settings.cache_app, name="cache")
app.add_typer(kbs.app, name="kbs")
app.add_typer(jobs.app, name="jobs")
app.add_typer(tokens.app, name="tokens")
app.add_typer(eval_app, name="eval")


def _version(value: bool) -> None:
    if value:
        print(f"kb {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    kb: str | None = typer.Option(None, "--kb", help="Knowledge base name (default: 'default', or $KB_NAME)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and library messages."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    ctx.obj = context.CliContext(kb=kb, debug=debug)
    ctx.call_on_close(ctx.obj.close)


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
        ui.error(exc.format_message())
        return exc.exit_code
    except exits as exc:
        return exc.exit_code
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    logs.configure(debug=debug)
    try:
        _check_arguments(args)
        code = _run(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below and not at exit
    except KbError as exc:
        if debug:
            traceback.print_exc()
        ui.error(advice.message(exc))
        sys.exit(advice.exit_code(exc))
    except KeyboardInterrupt:
        ui.error("interrupted; everything committed before the interruption is kept")
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our output went away (`kb search ... | head`): not an error of kb's.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except Exception as exc:  # a bug in kb: say so in one line; --debug shows where
        if debug:
            traceback.print_exc()
        ui.error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it")
        sys.exit(70)
    sys.exit(code)
