"""Search hits as a table, and answers: streamed as Markdown on a terminal, with their sources."""

from __future__ import annotations

from kb.cli.render import note, out, short


def hits_table(query: str, hits) -> None:
    from rich.table import Table

    table = Table(title=f"[bold]{query}[/]", title_justify="left", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source", max_width=36, overflow="fold")
    table.add_column("text", ratio=1, min_width=30)
    for h in hits:
        snippet = " ".join(h.text.split())
        snippet = snippet[:300] + ("…" if len(snippet) > 300 else "")
        where = "\n".join(x for x in (short(h.source), h.location(), h.heading) if x)
        table.add_row(str(h.rank), f"{h.score:.3f}", where, snippet)
    out.print(table)


class MarkdownStream:
    """Shows a streamed answer as Markdown while it arrives (TTY only)."""

    def __init__(self) -> None:
        from rich.live import Live

        self.parts: list[str] = []
        self._live = Live(console=out, refresh_per_second=12, vertical_overflow="visible")
        self._live.start()

    def text(self, delta: str) -> None:
        from rich.markdown import Markdown

        self.parts.append(delta)
        self._live.update(Markdown("".join(self.parts)))

    def reset(self, reason: str) -> None:
        self._live.update("")
        self.parts = []
        note(f"{reason}; trying the next provider")

    def close(self, final: str | None = None) -> None:
        """Stop; `final` replaces the streamed text (citations may have been dropped)."""
        from rich.markdown import Markdown

        if final is not None and self.parts:
            self._live.update(Markdown(final))
        self._live.stop()


def answer(ans, streamed: bool) -> None:
    from rich.markdown import Markdown

    if not streamed:
        out.print(Markdown(ans.answer) if out.is_terminal else ans.answer)
    if ans.citations:
        out.print()
        for c in ans.citations:
            where = c.hit.location()
            out.print(f"[{c.n}] {short(c.hit.source)}" + (f", {where}" if where else ""), markup=False, highlight=False)
    if ans.dropped_citations:
        note(f"dropped citations to passages the model was not given: {ans.dropped_citations}")
    if ans.standalone_method != "question":
        how = "condensed by the model" if ans.standalone_method == "condensed" else "the conversation's questions"
        note(f"searched for ({how}): {ans.standalone_question}")
    u = ans.usage
    cost = f"${u.cost_usd:.6f}" if u.cost_usd else "$0"
    line = (
        f"{ans.provider} ({ans.model}) · {ans.latency_ms['total']:.0f} ms · "
        f"{u.input_tokens} in / {u.output_tokens} out tokens · {cost}" + (" · cached" if ans.cached else "")
    )
    note(line)
    for a in ans.attempts:
        if a.outcome != "ok":
            stage = "" if a.stage == "answer" else f"{a.stage}: "
            note(f"  fell back past {a.provider} ({stage}{a.error}): {a.message or 'no details'}")


CHAT_HELP = (
    "Type 'exit' or 'quit' to leave (or Ctrl-D), '!reset' to forget the conversation, "
    "'!multi' to write several lines, then '!end' to send them."
)


def chat_banner(kb: str) -> None:
    note(f"Chatting with knowledge base {kb!r}")
    note(CHAT_HELP)
