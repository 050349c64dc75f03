"""Searching and asking: /v1/search, /v1/ask."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from kb.answering.conversation import clean_history
from kb.answering.question import clean_question
from kb.options import SearchOptions
from kb.service.auth import Principal, need
from kb.service.context import ServiceDep, ok
from kb.service.schemas import (
    GUARDED,
    AnswerModel,
    AskRequest,
    SearchOne,
    SearchRequest,
    SearchResult,
    SearchResults,
    errors,
    search_filter,
)
from kb.service.streaming import answer_events

router = APIRouter(tags=["knowledge bases"], responses=errors(*GUARDED, 403, 404))
Reader = Annotated[Principal, Depends(need("read", "search or ask"))]


@router.post(
    "/v1/search",
    responses={200: {"model": SearchResult | SearchResults, "description": "`hits` for `query`; `results` for "
                      "`queries`."}, **errors(400, 503)},
)  # fmt: skip
async def search(body: SearchRequest, service: ServiceDep, principal: Reader) -> Response:
    """The passages that best match `query` (or each of `queries`), as `kb search --json`."""
    kb = service.kb(principal, body.kb)
    options = SearchOptions().merged(k=body.k, mode=body.mode, unique_sources=body.unique_sources,
                                     filter=search_filter(body.filter), rerank=body.rerank)  # fmt: skip
    queries = [body.query] if isinstance(body, SearchOne) else body.queries
    for query in queries:  # refused alone, before it joins the searches of other requests
        clean_question(query, service.settings.max_question_chars)
    results = await service.batcher.submit(("search", kb.name, options), queries,
                                           functools.partial(kb.search_many, options=options))  # fmt: skip
    for hits in results:
        service.observability.searched(hits)
    if isinstance(body, SearchOne):
        return ok({"hits": [h.to_json(body.query) for h in results[0]]})
    return ok({"results": [{"query": q, "hits": [h.to_json(q) for h in hits]} for q, hits in zip(queries, results)]})


@router.post(
    "/v1/ask",
    responses={
        200: {"model": AnswerModel, "description": "The answer (`kb ask --json`), or with `stream` server-sent "
              "events: `delta`, `reset`, then `answer` or `error`.", "content": {"text/event-stream": {}}},
        **errors(400, 503),
    },
)  # fmt: skip
async def ask(body: AskRequest, request: Request, service: ServiceDep, principal: Reader) -> Response:
    """An answer with citations, the same object as `kb ask --json`; streamed as
    server-sent events with `"stream": true` or `Accept: text/event-stream`."""
    kb = service.kb(principal, body.kb)
    clean_question(body.question, service.settings.max_question_chars)  # refused before any stream starts
    options = SearchOptions().merged(k=body.top_k, mode=body.mode, unique_sources=body.unique_sources,
                                     filter=search_filter(body.filter), rerank=body.rerank)  # fmt: skip
    history = clean_history(t.model_dump() for t in body.history)
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        await service.call(kb.access.storage.require, kb.name)  # 404 before the stream, not inside it
        events = answer_events(service, kb, body.question, options, body.provider, not body.no_cache, history)
        return StreamingResponse(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})
    answer = await service.call(kb.ask, body.question, options=options, provider=body.provider,
                                use_cache=not body.no_cache, history=history)  # fmt: skip
    service.observability.answered(answer)
    return ok(answer.to_json())
