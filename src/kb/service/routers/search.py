"""Searching and asking: /v1/search, /v1/ask."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from kb.errors import InputError
from kb.options import SearchOptions
from kb.service.context import ServiceDep
from kb.service.streaming import answer_events

router = APIRouter(tags=["knowledge bases"])

MODE_FIELD = Field(None, description="hybrid, dense or keyword (default: the search_mode setting).")
UNIQUE_FIELD = Field(None, description="At most one passage per document.")


class SearchRequest(BaseModel):
    query: str | None = Field(None, description="One query; or send `queries`.")
    queries: list[str] | None = Field(None, description="Several queries, answered in one request.", max_length=100)
    k: int | None = Field(None, ge=1, le=100, description="Passages per query (default: top_k).")
    kb: str | None = Field(None, description="Knowledge base (default: the server's).")
    mode: str | None = MODE_FIELD
    unique_sources: bool | None = UNIQUE_FIELD

    def options(self) -> SearchOptions:
        return SearchOptions().merged(k=self.k, mode=self.mode, unique_sources=self.unique_sources)


class AskRequest(BaseModel):
    question: str = Field(..., description="The question.")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages given to the model.")
    provider: str | None = Field(None, description="Use only this provider of the chain.")
    no_cache: bool = Field(False, description="Neither read nor write the answer cache.")
    kb: str | None = None
    mode: str | None = MODE_FIELD
    unique_sources: bool | None = UNIQUE_FIELD
    stream: bool = Field(False, description="Server-sent events: deltas, then one final event.")

    def options(self) -> SearchOptions:
        return SearchOptions().merged(k=self.top_k, mode=self.mode, unique_sources=self.unique_sources)


@router.post("/v1/search")
async def search(body: SearchRequest, service: ServiceDep) -> dict:
    """The passages that best match `query` (or each of `queries`)."""
    if (body.query is None) == (body.queries is None):
        raise InputError('send either "query" or "queries"')
    queries = [body.query] if body.query is not None else list(body.queries or [])
    kb = service.library.kb(body.kb)
    results = await service.call(kb.search_many, queries, body.options())
    for hits in results:
        service.observability.searched(hits)
    if body.query is not None:
        return {"hits": [h.to_json(body.query) for h in results[0]]}
    return {"results": [{"query": q, "hits": [h.to_json(q) for h in hits]} for q, hits in zip(queries, results)]}


@router.post("/v1/ask", response_model=None)
async def ask(body: AskRequest, request: Request, service: ServiceDep) -> Any:
    """An answer with citations, the same object as `kb ask --json`; streamed as
    server-sent events with `"stream": true` or `Accept: text/event-stream`."""
    kb = service.library.kb(body.kb)
    options = body.options()
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        events = answer_events(service, kb, body.question, options, body.provider, not body.no_cache)
        return StreamingResponse(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})
    answer = await service.call(kb.ask, body.question, options=options, provider=body.provider,
                                use_cache=not body.no_cache)  # fmt: skip
    service.observability.answered(answer)
    return answer.to_json()
