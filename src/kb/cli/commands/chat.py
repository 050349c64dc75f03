"""`kb chat`: a conversation with a knowledge base in the terminal, in the manner of `llm chat`.

Each question is answered with the conversation so far: the passages are retrieved for it as
the conversation means it, and a language model of the chain sees the earlier turns
(kb.answering.conversation). The history lives as long as the session. Off a terminal, each
line of standard input is a question (`--json`: one answer object per line).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import typer

from kb.answering.conversation import Turn
from kb.cli import advice, context
from kb.cli import render as ui
from kb.cli.commands.search import answer_and_show
from kb.cli.options import JSON, MODE, NO_RERANK, SINCE, SOURCE, TYPE, UNIQUE, search_options
from kb.cli.render import answers as render
from kb.errors import ConfigError, EmptyKb, InputError, KbError, NotFound

# Errors that every later question would meet too: they end the session.
_FATAL = (ConfigError, NotFound, EmptyKb)


def _lines(interactive: bool) -> Iterator[str]:
    """The user's lines: typed at a prompt, or read from standard input (strict UTF-8)."""
    if interactive:
        while True:
            try:
                yield input("> ")
            except EOFError:
                print()
                return
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"line {number} of standard input is not valid UTF-8 (byte {exc.start})") from None


def _messages(lines: Iterator[str]) -> Iterator[str]:
    """What the user says: one line each, or the lines between '!multi' and '!end'."""
    for line in lines:
        text = line.strip()
        if text != "!multi":
            yield text
            continue
        gathered = []
        for more in lines:
            if more.strip() == "!end":
                break
            gathered.append(more.rstrip("\n"))
        yield "\n".join(gathered).strip()


def chat(
    ctx: typer.Context,
    top_k: int | None = typer.Option(
        None, "--top-k", "-k", min=1, max=50, help="Passages given to the model (default 5)."
    ),
    provider: str | None = typer.Option(None, "--provider", help="Use only this provider from the chain."),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print each answer when complete."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the answer cache."),
    mode: str | None = MODE,
    unique_sources: bool | None = UNIQUE,
    source: list[str] | None = SOURCE,
    types: list[str] | None = TYPE,
    since: str | None = SINCE,
    no_rerank: bool = NO_RERANK,
    as_json: bool = JSON,
) -> None:
    """Talk with the knowledge base: follow-up questions are answered with the conversation
    so far in mind. 'exit', 'quit' or Ctrl-D leaves; '!reset' forgets the conversation."""
    options = search_options(top_k, mode, unique_sources, source, types, since, no_rerank)
    kb = context.kb(ctx)
    interactive = sys.stdin.isatty()
    if interactive:
        render.chat_banner(kb.name)
    history: list[Turn] = []
    failed = 0
    for text in _messages(_lines(interactive)):
        if not text:
            continue
        if text in ("exit", "quit"):
            break
        if text == "!reset":
            history.clear()
            ui.note("the conversation is forgotten; the next question starts afresh")
            continue
        try:
            answer = answer_and_show(kb, text, options, provider, not no_cache, not no_stream, as_json, history)
        except _FATAL:
            raise
        except KbError as exc:  # this question failed; the session goes on
            ui.error(advice.message(exc))
            failed += 1
            continue
        history += [Turn("user", text), Turn("assistant", answer.answer)]
        if interactive and not as_json:
            ui.out.print()
    if failed:
        raise typer.Exit(1)
