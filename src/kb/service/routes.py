"""The /v1 routes, the probes and /metrics. Each maps onto one facade method."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from kb.errors import InputError
from kb.service import errors
from kb.service.ingest import accept_ingest
from kb.service.streaming import answer_events

if TYPE_CHECKING:
    from kb.service.app import Service


class SearchRequest(BaseModel):
    query: str | None = Field(None, description="One query; or send `queries`.")
    queries: list[str] | None = Field(None, description="Several queries, answered in one request.", max_length=100)
    k: int | None = Field(None, ge=1, le=100, description="Passages per query (default: top_k).")
    kb: str | None = Field(None, description="Knowledge base (default: the server's).")
    mode: str | None = Field(None, description="hybrid, dense or keyword (default: the search_mode setting).")
    unique_sources: bool | None = Field(None, description="At most one passage per document.")


class AskRequest(BaseModel):
    question: str = Field(..., description="The question.")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages given to the model.")
    provider: str | None = Field(None, description="Use only this provider of the chain.")
    no_cache: bool = Field(False, description="Neither read nor write the answer cache.")
    kb: str | None = None
    mode: str | None = Field(None, description="hybrid, dense or keyword (default: the search_mode setting).")
    unique_sources: bool | None = Field(None, description="At most one passage per document.")
    stream: bool = Field(False, description="Server-sent events: deltas, then one final event.")


def register(app: FastAPI, service: Service) -> None:
    lib = service.library

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> JSONResponse:
        """Store, queue and model reachable; 503 with the reasons if not."""
        problems = await service.call(service.readiness)
        if problems:
            message = "; ".join(f"{part}: {why}" for part, why in problems.items())
            return JSONResponse(errors.body("not_ready", message) | {"checks": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["probes"])
    async def metrics() -> Response:
        """Prometheus text format."""
        text = await service.call(service.observability.text)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/search", tags=["knowledge bases"])
    async def search(body: SearchRequest) -> dict:
        """The passages that best match `query` (or each of `queries`)."""
        if (body.query is None) == (body.queries is None):
            raise InputError('send either "query" or "queries"')
        queries = [body.query] if body.query is not None else list(body.queries or [])
        kb = lib.kb(body.kb)
        results = await service.call(kb.search, queries, body.k, body.mode, body.unique_sources)
        for hits in results:
            service.observability.searched(hits)
        if body.query is not None:
            return {"hits": [h.to_json(body.query) for h in results[0]]}
        return {"results": [{"query": q, "hits": [h.to_json(q) for h in hits]} for q, hits in zip(queries, results)]}

    @app.post("/v1/ask", tags=["knowledge bases"], response_model=None)
    async def ask(body: AskRequest, request: Request) -> Any:
        """An answer with citations, the same object as `kb ask --json`; streamed as
        server-sent events with `"stream": true` or `Accept: text/event-stream`."""
        kb = lib.kb(body.kb)
        args = (body.question, body.top_k, body.provider, not body.no_cache)
        options = {"mode": body.mode, "unique_sources": body.unique_sources}
        if body.stream or "text/event-stream" in request.headers.get("accept", ""):
            events = answer_events(service, kb, *args, render=lambda answer: answer.to_json(), options=options)
            return StreamingResponse(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})
        answer = await service.call(kb.ask, *args, **options)
        service.observability.answered(answer)
        return answer.to_json()

    @app.post("/v1/ingest", tags=["jobs"], status_code=202)
    async def ingest(request: Request) -> JSONResponse:
        """Queues an ingest and answers at once with the job (202). JSON `{"paths": [...],
        "kb", "callback_url"}` for files on the server (under the configured roots), or
        multipart uploads (`files`, plus `kb` and `callback_url` fields)."""
        job = await accept_ingest(service, request)
        return JSONResponse({"job_id": job["id"], "job": job}, status_code=202,
                            headers={"location": f"/v1/jobs/{job['id']}"})  # fmt: skip

    @app.get("/v1/jobs", tags=["jobs"])
    async def jobs(
        kb: str | None = None, state: str | None = Query(None, pattern="^(queued|running|done|failed)$"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict:  # fmt: skip
        """Recent jobs, newest first (all knowledge bases unless `kb` is given)."""
        target = lib.kb(kb)
        return {"jobs": await service.call(target.jobs, kb is None, state, limit)}

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def job(job_id: str) -> dict:
        """One job: state, progress, the ingest report when done, webhook deliveries."""
        return await service.call(lib.kb().job, job_id)

    @app.post("/v1/jobs/{job_id}/retry", tags=["jobs"], status_code=202)
    async def retry(job_id: str) -> dict:
        """Queues a done or failed job again."""
        return await service.call(lib.kb().retry_job, job_id)

    @app.get("/v1/documents", tags=["knowledge bases"])
    async def documents(kb: str | None = None) -> dict:
        """The documents with their chunk counts (`kb list --json`)."""
        return {"documents": await service.call(lib.kb(kb).documents)}

    @app.delete("/v1/documents", tags=["knowledge bases"])
    async def remove(source: str = Query(..., min_length=1), kb: str | None = None) -> dict:
        """Removes a document, or every document under a folder (`kb remove`)."""
        docs, chunks = await service.call(lib.kb(kb).remove, Path(source))
        return {"documents": docs, "chunks": chunks}

    @app.get("/v1/info", tags=["knowledge bases"])
    async def info(kb: str | None = None) -> dict:
        """Where the knowledge base lives, its model and its size (`kb info --json`)."""
        return await service.call(lib.kb(kb).info)

    @app.get("/v1/kbs", tags=["knowledge bases"])
    async def kbs() -> dict:
        """The knowledge bases of this server (`kb kbs --json`)."""
        return {"kbs": await service.call(lib.kb().knowledge_bases)}

    @app.get("/v1/stats", tags=["knowledge bases"])
    async def stats(kb: str | None = None, since: str | None = None, all: bool = False) -> dict:
        """The `kb stats --json` figures."""
        return await service.call(lib.kb(kb).stats, since, all)

    from kb.service.openai_api import register as register_openai

    register_openai(app, service)
