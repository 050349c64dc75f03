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
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from kb.config import Settings
from kb.errors import KbError
from kb.service import errors, page
from kb.service.context import RequestTimeout, Service
from kb.service.guards import BodyTooLarge, Guards
from kb.service.routers import documents, jobs, openai, probes, search
from kb.service.routers import tokens as token_routes
from kb.version import __version__

DESCRIPTION = """Search and ask your knowledge bases; ingest in the background; OpenAI-compatible
embeddings and chat completions whose model is a knowledge base.

Every route but the probes, this documentation and the web page (/ui) needs a bearer token when the server has
any (KB_SERVE_TOKENS, or `kb tokens create`): *read* tokens search, ask and read; *write*
tokens also ingest, remove and retry jobs; *admin* tokens also manage tokens and delete
knowledge bases. Errors are `{"error": {"kind", "message", "details"}}`."""


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

    app = FastAPIOffline(  # /docs and /redoc with their assets from the package: no CDN
        title="kb",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = service
    _handlers(app)
    routers = (probes.router, search.router, jobs.router, documents.router, token_routes.router,
               token_routes.current, openai.router)  # fmt: skip
    for router in routers:
        app.include_router(router)
    page.mount(app)
    routes = [route for router in routers for route in router.routes]
    app.state.kb_routers = routers
    mb = 1024 * 1024
    return Guards(
        app,
        auth=service.auth,
        limits=service.limits,
        observe=lambda scope, status: service.observability.refused(_route(routes, scope), scope["method"], status),
        answered=lambda scope, status, started: service.observability.request(
            str(getattr(scope.get("route"), "path", "unmatched")), scope["method"], status, started
        ),
        max_body=int(settings.serve.max_body_mb * mb),
        max_upload=int(settings.serve.max_upload_mb * mb),
        max_in_flight=settings.serve.max_in_flight,
    )


def _route(routes: list[BaseRoute], scope: MutableMapping[str, Any]) -> str:
    """The route template a request would reach (its label in /metrics), or "unmatched"."""
    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(KbError)
    async def kb_error(request: Request, exc: KbError) -> JSONResponse:
        return JSONResponse(errors.of(exc), status_code=errors.status_of(exc))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:  # a bug: kb's shape, never a traceback
        logging.getLogger("kb.serve").error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        message = f"internal error ({type(exc).__name__}); the server's log has the details"
        return JSONResponse(errors.body("internal_error", message, 500), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems, fields = [], []
        for e in exc.errors():
            # The field's path, without pydantic's names for union branches and validators.
            loc = list(e.get("loc", ()))
            loc = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
            where = [str(p) for p in loc if p not in ("one", "many") and not any(c in str(p) for c in "[(")]
            fields.append(where[0] if where else None)
            problems.append(f"{'.'.join(where) or 'body'}: {_plain(e.get('msg', 'invalid'))}")
        details = {"field": fields[0]} if fields and fields[0] else None
        return JSONResponse(errors.body("invalid_request", "; ".join(problems) or "invalid request", 422, details),
                            status_code=422)  # fmt: skip

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(errors.body("too_large", str(exc), 413), status_code=413)

    @app.exception_handler(RequestTimeout)
    async def timeout(request: Request, exc: RequestTimeout) -> JSONResponse:
        limit = request.app.state.service.settings.serve.request_timeout_s
        message = f"the request took longer than {limit:g}s (serve.request_timeout_s)"
        return JSONResponse(errors.body("timeout", message, 504), status_code=504)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        too_large = _body_too_large(exc)
        if too_large is not None:  # FastAPI turns errors met while reading a body into a 400
            return JSONResponse(errors.body("too_large", str(too_large), 413), status_code=413)
        if exc.status_code == 400:  # a body the framework could not read (a broken multipart form)
            return JSONResponse(errors.body("invalid_request", str(exc.detail), 422), status_code=422)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(errors.body(kind, str(exc.detail), exc.status_code), status_code=exc.status_code,
                            headers=exc.headers)  # fmt: skip  # 405 keeps its Allow header


def _plain(message: str) -> str:
    """A validation message without the lone surrogates a hostile value may carry."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


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
