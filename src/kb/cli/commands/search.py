"""`kb search` and `kb ask`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from kb.cli import context
from kb.cli import render as ui
from kb.cli.options import JSON, MODE, NO_RERANK, SINCE, SOURCE, TYPE, UNIQUE, search_options
from kb.cli.render import answers as render
from kb.errors import InputError

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.answering.conversation import Turn
    from kb.knowledge_base import KnowledgeBase
    from kb.options import SearchOptions


def search(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="What to look for; '-' reads one query per line from stdin."),
    k: int | None = typer.Option(
        None, "-k", "--top-k", min=1, max=100, help="How many passages to show (default: top_k, 5)."
    ),
    mode: str | None = MODE,
    unique_sources: bool | None = UNIQUE,
    source: list[str] | None = SOURCE,
    types: list[str] | None = TYPE,
    since: str | None = SINCE,
    no_rerank: bool = NO_RERANK,
    as_json: bool = JSON,
) -> None:
    """Show the passages that best match QUERY."""
    options = search_options(k, mode, unique_sources, source, types, since, no_rerank)
    queries = _queries(query)
    if not queries:
        raise InputError("no queries on standard input; pass one per line")
    results = context.kb(ctx).search_many(queries, options)
    for q, hits in zip(queries, results):
        if as_json:
            for hit in hits:
                ui.emit_json(hit.to_json(q))
        else:
            render.hits_table(q, hits)


def ask(
    ctx: typer.Context,
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
    source: list[str] | None = SOURCE,
    types: list[str] | None = TYPE,
    since: str | None = SINCE,
    no_rerank: bool = NO_RERANK,
    as_json: bool = JSON,
) -> None:
    """Answer QUESTION from the knowledge base, with numbered citations."""
    options = search_options(top_k, mode, unique_sources, source, types, since, no_rerank)
    text = stdin_text() if question == "-" else question
    answer_and_show(context.kb(ctx), text, options, provider, not no_cache, not no_stream, as_json)


def answer_and_show(
    kb: KnowledgeBase,
    question: str,
    options: SearchOptions,
    provider: str | None,
    use_cache: bool,
    stream: bool,
    as_json: bool,
    history: Sequence[Turn] = (),
) -> Answer:
    """Asks, streaming the answer as Markdown on a terminal, and shows it (`kb ask`, `kb chat`)."""
    sink = render.MarkdownStream() if ui.out.is_terminal and stream and not as_json else None
    try:
        answer = kb.ask(question, options=options, provider=provider, use_cache=use_cache, stream=sink,
                        history=history)  # fmt: skip
    except BaseException:
        if sink:
            sink.close()
        raise
    if sink:
        sink.close(final=answer.answer)
    if as_json:
        ui.emit_json(answer.to_json())
    else:
        render.answer(answer, streamed=bool(sink and sink.parts))
    return answer


def stdin_text() -> str:
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
    return [line.strip() for line in stdin_text().splitlines() if line.strip()]
