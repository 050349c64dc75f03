"""The HTTP API. Every route parses its input, calls the core the CLI calls, and renders
the same JSON the CLI's `--json` prints; errors are kb's own kinds, with remedies in HTTP
terms (errors.py).

Calls of the core block (SQLite, Chroma, the encoder), so routes run them on worker
threads, with a deadline per request (504 past it). One Library per process holds one
KnowledgeBase per name, shared by all requests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb.config import Settings
from kb.errors import KbError
from kb.service import errors
from kb.service.context import RequestTimeout, Service
from kb.service.guards import BodyTooLarge, Guards
from kb.service.routers import documents, jobs, openai, probes, search
from kb.version import __version__


def create_app(settings: Settings, worker: bool = False) -> Guards:
    service = Service(settings, worker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service.worker is not None:
            from kb.jobs.webhooks import secret_problems

            for problem in secret_problems(settings):
                logging.getLogger("kb.serve").warning(problem)
            service.worker.start()
        warming = asyncio.get_running_loop().run_in_executor(None, service.warm)
        try:
            yield
        finally:
            if not warming.done():
                warming.cancel()
            if service.worker is not None:
                await asyncio.get_running_loop().run_in_executor(None, service.worker.stop)
            service.library.close()

    app = FastAPI(
        title="kb",
        version=__version__,
        description="Search and ask your knowledge bases; ingest in the background; OpenAI-compatible embeddings "
        "and chat completions whose model is a knowledge base.",
        lifespan=lifespan,
    )
    app.state.service = service
    _handlers(app)
    _metrics_middleware(app, service)
    for router in (probes.router, search.router, jobs.router, documents.router, openai.router):
        app.include_router(router)
    tokens = [t.strip() for t in os.environ.get("KB_SERVE_TOKENS", "").split(",") if t.strip()]
    mb = 1024 * 1024
    return Guards(
        app,
        tokens=tokens,
        max_body=int(settings.serve.max_body_mb * mb),
        max_upload=int(settings.serve.max_upload_mb * mb),
        max_in_flight=settings.serve.max_in_flight,
    )


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(KbError)
    async def kb_error(request: Request, exc: KbError) -> JSONResponse:
        return JSONResponse(errors.of(exc), status_code=errors.status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse(errors.body("invalid_request", problems or "invalid request"), status_code=422)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(errors.body("too_large", str(exc)), status_code=413)

    @app.exception_handler(RequestTimeout)
    async def timeout(request: Request, exc: RequestTimeout) -> JSONResponse:
        limit = request.app.state.service.settings.serve.request_timeout_s
        message = f"the request took longer than {limit:g}s (serve.request_timeout_s)"
        return JSONResponse(errors.body("timeout", message), status_code=504)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        too_large = _body_too_large(exc)
        if too_large is not None:  # FastAPI turns errors met while reading a body into a 400
            return JSONResponse(errors.body("too_large", str(too_large)), status_code=413)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(errors.body(kind, str(exc.detail)), status_code=exc.status_code)


def _body_too_large(exc: BaseException) -> BodyTooLarge | None:
    """The BodyTooLarge behind an exception, through causes and exception groups."""
    seen: BaseException | None = exc.__cause__
    while seen is not None:
        if isinstance(seen, BodyTooLarge):
            return seen
        if isinstance(seen, BaseExceptionGroup):
            match = seen.subgroup(BodyTooLarge)
            return match.exceptions[0] if match is not None else None  # type: ignore[return-value]
        seen = seen.__cause__
    return None


def _metrics_middleware(app: FastAPI, service: Service) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Callable) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            service.observability.request(path, request.method, status, started)
