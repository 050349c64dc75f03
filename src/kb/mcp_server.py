"""`kb mcp`: the knowledge bases of a KB_HOME served over the Model Context Protocol.

A front-end like the CLI: each tool parses its arguments, calls one method of the core
and renders the result, as structured content (the same JSON objects as `kb search
--json`, `kb ask --json` and `kb list --json`) plus text a chat client can show.

- One Library: a shared Home (cache, metrics, breakers, encoders) and one KnowledgeBase per name,
  opened on first use; tools take an optional `kb` naming another KB of the home.
- The tools are plain functions: the SDK (MCPServer) runs synchronous tools on a worker
  thread (`anyio.to_thread.run_sync`), so a search or an answer never blocks the event
  loop, and calls run side by side on the thread-safe core.
- Every failure is a tool error (`is_error`) carrying one line: kb's own message for a
  KbError, with its remedy in the assistant's terms (the tools and their arguments), a one-line summary for arguments that do not fit the input schema, and
  "internal error (...)" for a bug. The server keeps serving.
- Only protocol messages reach stdout: the SDK's stdio transport points fd 1 at stderr
  while it serves, and library logging goes through kb.logs.

This module imports the `mcp` SDK; only `kb mcp` imports it.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError
from typing_extensions import TypedDict

from kb.config import Settings
from kb.errors import KbError
from kb.library import Library
from kb.options import SearchFilter, SearchOptions
from kb.results import DocumentInfo
from kb.version import __version__

# -- the structured results (the tools' output schemas) ----------------------------------
# The objects themselves come from Hit.to_json, Answer.to_json and DocumentInfo.to_json.


class HitJson(TypedDict):
    query: str
    rank: int
    score: float
    source: str
    chunk_id: str
    page: int | None
    lines: str | None
    locator: str | None
    heading: str | None
    text: str
    similarity: float | None
    keyword_rank: int | None
    rerank_score: float | None


class SearchResult(TypedDict):
    kb: str
    query: str
    hits: list[HitJson]


class CitationJson(TypedDict):
    n: int
    source: str
    chunk_id: str
    page: int | None
    lines: str | None
    locator: str | None
    text: str


class UsageJson(TypedDict):
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class AttemptJson(TypedDict):
    provider: str
    outcome: str
    error: str | None
    latency_ms: float
    message: str | None
    stage: str


class AnswerJson(TypedDict):
    question: str
    answer: str
    citations: list[CitationJson]
    provider: str
    model: str
    cached: bool
    usage: UsageJson
    latency_ms: dict[str, float]
    attempts: list[AttemptJson]
    dropped_citations: list[int]
    standalone_question: str
    standalone_method: str


class DocumentJson(TypedDict):
    source: str
    chunks: int
    bytes: int
    ingested_at: str


class DocumentList(TypedDict):
    kb: str
    documents: list[DocumentJson]


# -- rendering: the text content a chat client shows --------------------------------------
def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _where(source: str, location: str, heading: str | None = None) -> str:
    return ", ".join(x for x in (source, location, heading) if x)


def search_text(kb: str, query: str, hits: list) -> str:
    if not hits:
        return f"No passages in knowledge base {kb!r} match {query!r}."
    lines = [f"{_count(len(hits), 'passage')} from knowledge base {kb!r} for {query!r}:"]
    for h in hits:
        lines += ["", f"[{h.rank}] {_where(h.source, h.location(), h.heading)} (score {h.score:.3f})", h.text.strip()]
    return "\n".join(lines)


def answer_text(answer: Any) -> str:
    lines = [answer.answer.strip()]
    if answer.citations:
        lines += ["", "Sources:"]
        lines += [f"[{c.n}] {_where(c.hit.source, c.hit.location(), c.hit.heading)}" for c in answer.citations]
    if answer.standalone_method != "question":
        lines += ["", f"Searched for: {answer.standalone_question}"]
    return "\n".join(lines)


def documents_text(kb: str, rows: list[DocumentInfo]) -> str:
    if not rows:
        return f"Knowledge base {kb!r} has no documents yet; they are added on the server kb runs on."
    lines = [f"{_count(len(rows), 'document')} in knowledge base {kb!r}:"]
    lines += [f"- {r.source} ({r.chunks} chunks, ingested {r.ingested_at})" for r in rows]
    return "\n".join(lines)


def _result(text: str, data: dict) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


# -- errors ------------------------------------------------------------------------------
# Each remedy in the assistant's terms: the tools and their arguments.
WORDING = {
    "create_kb": "call list_documents without `kb` for the default knowledge base, or name an existing one",
    "add_documents": "documents are added on the server kb runs on",
    "list_documents": "list_documents shows what is (and what a filter can select)",
    "repair": "the server's index needs a repair by whoever runs kb",
    "diagnose": "whoever runs kb can check the knowledge base",
    "model_changed": "use another knowledge base",
    "providers": "the model providers of the server did not answer; try again later",
}


def validation_message(tool: str, exc: ValidationError) -> str:
    """Arguments that do not fit the input schema, in one line."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "arguments"
        problems.append(f"{field}: {err['msg'][:1].lower()}{err['msg'][1:]}")
    return f"invalid arguments for {tool}: {'; '.join(problems)}; see the tool's input schema"


class KbServer(MCPServer[Any]):
    """MCPServer whose tool errors are one line: kb's own message for a KbError, a summary
    for arguments that do not fit the schema, "internal error (...)" for a bug. The SDK
    would prefix "Error executing tool NAME: ", report a crash as only that prefix, and a
    schema mismatch as pydantic's multi-line report."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(validation_message(name, cause)) from cause
            if isinstance(cause, KbError):
                raise ToolError(cause.explained(WORDING)) from cause
            if cause is not None and not isinstance(cause, ToolError):
                traceback.print_exception(cause, file=sys.stderr)  # the server's log: stderr
                message = f"internal error ({type(cause).__name__}: {cause}); the server's log has the details"
                raise ToolError(message) from cause
            raise


# -- the server --------------------------------------------------------------------------
INSTRUCTIONS = """\
kb holds a knowledge base built from the user's own documents (notes, manuals, papers,
e-mail...). Use `search` to find the passages about something, `ask` for an answer written
from those passages with numbered citations, and `list_documents` to see what the
knowledge base contains. The default knowledge base is {default!r}; the `kb` argument
names another one of the same kb home."""

KB_ARG = Field(
    description="Name of another knowledge base of the same kb home (default: the one the server was started for). "
    "An unknown name fails with the list of existing ones.",
)


MODE_ARG = Field(
    description="hybrid (meaning and exact words, fused; the default), dense (meaning) or keyword (exact words).",
    pattern="^(hybrid|dense|keyword)$",
)
UNIQUE_ARG = Field(description="At most one passage per document.")
SOURCE_ARG = Field(
    description="Only documents whose path matches one of these globs: '*.md', 'manuals/*.pdf', a folder "
    "('manuals', '/srv/docs'). A glob starting with '/' is matched against the whole path, any other against its end.",
)
TYPE_ARG = Field(description="Only documents of these types (file suffixes): md, pdf, txt...")
SINCE_ARG = Field(
    description="Only documents modified at or after: a date (2025-01-31), a date and time (2025-01-31T08:00:00Z) "
    "or a duration back from now (7d, 12h).",
)
RERANK_ARG = Field(description="false: keep the fused order even if the server has a reranker.")


class TurnArg(TypedDict):
    role: Annotated[str, Field(pattern="^(user|assistant)$")]
    content: str


HISTORY_ARG = Field(
    description="The conversation before `question`, oldest first ({role: user|assistant, content}): the passages "
    "are retrieved for the question as the conversation means it ('What temperature should it be?' after a "
    "question about candles), and the answer's standalone_question shows what was searched.",
)


def _options(
    k: int | None,
    mode: str | None,
    unique_sources: bool | None,
    source: list[str] | None,
    type: list[str] | None,
    since: str | None,
    rerank: bool | None,
) -> SearchOptions:
    found = SearchFilter.of(source or (), type or (), since)
    return SearchOptions().merged(k=k, mode=mode, unique_sources=unique_sources, filter=found or None, rerank=rerank)


def build(settings: Settings, debug: bool = False) -> tuple[KbServer, Library]:
    """The server and the knowledge bases it serves (the caller closes them after run())."""
    kbs = Library(settings, long_lived=True)
    server = KbServer(
        "kb",
        title="kb knowledge base",
        version=__version__,
        instructions=INSTRUCTIONS.format(default=settings.kb),
        debug=debug,
    )

    def search(
        query: Annotated[str, Field(description="What to look for, in natural language or keywords.")],
        k: Annotated[int, Field(ge=1, le=100, description="How many passages to return.")] = 5,
        kb: Annotated[str | None, KB_ARG] = None,
        mode: Annotated[str | None, MODE_ARG] = None,
        unique_sources: Annotated[bool | None, UNIQUE_ARG] = None,
        source: Annotated[list[str] | None, SOURCE_ARG] = None,
        type: Annotated[list[str] | None, TYPE_ARG] = None,
        since: Annotated[str | None, SINCE_ARG] = None,
        rerank: Annotated[bool | None, RERANK_ARG] = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Find the passages of the user's documents that best match `query`, by meaning and by
        exact words (names, codes, numbers), best first, each with its source file, location
        (page, lines, slide...), heading, score and similarity (1 is identical). `source`, `type` and
        `since` narrow the search to some documents. Use it to look things up, to quote, or to
        collect material before answering yourself; use `ask` for a ready answer with citations."""
        base = kbs.kb(kb)
        hits = base.search(query, options=_options(k, mode, unique_sources, source, type, since, rerank))
        data = {"kb": base.name, "query": query, "hits": [h.to_json(query) for h in hits]}
        return _result(search_text(base.name, query, hits), data)

    def ask(
        question: Annotated[str, Field(description="The question, in natural language.")],
        top_k: Annotated[
            int | None, Field(ge=1, le=50, description="Passages to answer from (default: the top_k setting, 5).")
        ] = None,
        kb: Annotated[str | None, KB_ARG] = None,
        mode: Annotated[str | None, MODE_ARG] = None,
        unique_sources: Annotated[bool | None, UNIQUE_ARG] = None,
        source: Annotated[list[str] | None, SOURCE_ARG] = None,
        type: Annotated[list[str] | None, TYPE_ARG] = None,
        since: Annotated[str | None, SINCE_ARG] = None,
        rerank: Annotated[bool | None, RERANK_ARG] = None,
        history: Annotated[list[TurnArg] | None, HISTORY_ARG] = None,
    ) -> Annotated[CallToolResult, AnswerJson]:
        """Answer `question` from the user's documents: the most relevant passages are
        retrieved and an answer is written from them alone, citing them as [1], [2]..., with
        the numbered sources after it. The answer comes from the configured language model,
        or, without one, from the passages' most relevant sentences. `source`, `type` and `since`
        narrow the passages to some documents; pass the conversation so far as `history` for a
        follow-up question. Use it for questions about the content of the documents; use
        `search` to read the passages themselves."""
        options = _options(top_k, mode, unique_sources, source, type, since, rerank)
        answer = kbs.kb(kb).ask(question, options=options, history=[dict(turn) for turn in history or []])
        return _result(answer_text(answer), answer.to_json())

    def list_documents(kb: Annotated[str | None, KB_ARG] = None) -> Annotated[CallToolResult, DocumentList]:
        """List the documents in the knowledge base: each file's path, number of passages
        (chunks), size in bytes and when it was ingested. Use it to see what the knowledge base
        covers or which files a question could be answered from."""
        base = kbs.kb(kb)
        rows = base.documents()
        return _result(documents_text(base.name, rows), {"kb": base.name, "documents": [r.to_json() for r in rows]})

    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    for tool, title in (
        (search, "Search the knowledge base"),
        (ask, "Ask the knowledge base"),
        (list_documents, "List the documents"),
    ):
        description = " ".join((tool.__doc__ or "").split())  # the docstring as one paragraph
        server.add_tool(tool, title=title, description=description, annotations=reading)
    return server, kbs
