"""What the routes share: the Library, the metrics, the request deadline, readiness; and the
FastAPI dependency that hands it to a route (`ServiceDep`)."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from kb.config import Settings
from kb.errors import KbError
from kb.knowledge_base import KnowledgeBase
from kb.library import Library
from kb.service.auth import Authenticator, Principal, RateLimits
from kb.service.batching import Batcher
from kb.service.observability import Observability

T = TypeVar("T")


class RequestTimeout(Exception):
    pass


class Service:
    def __init__(self, settings: Settings, worker: bool) -> None:
        self.settings = settings
        self.library = Library(settings, long_lived=True)
        self.observability = Observability(self.library.home)
        static = [t.strip() for t in os.environ.get("KB_SERVE_TOKENS", "").split(",") if t.strip()]
        self.auth = Authenticator(static, self.library.home)
        self.limits = RateLimits(self.library.home)
        self.worker = None
        if worker:
            from kb.worker import EmbeddedWorker

            self.worker = EmbeddedWorker(self.library, settings.queue.workers)
        self.model_ready = False
        self.batcher = Batcher(self.call, enabled=settings.serve.micro_batch)
        self.observability.watch(self.batcher)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs a blocking call of the core on a worker thread, within the request deadline."""
        import anyio

        work = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.wait_for(
                anyio.to_thread.run_sync(work, abandon_on_cancel=True), self.settings.serve.request_timeout_s
            )
        except TimeoutError as exc:
            raise RequestTimeout from exc

    def warm(self) -> None:
        """Loads the query encoder, so the first search does not pay for it. An embedding
        service has nothing to load, and its being down must not keep this instance from
        serving keyword searches, jobs and the rest: searches report it (503) instead."""
        if self.settings.embedding.kind == "local":
            self.library.home.query_embedder.embed(["ready"])
        self.model_ready = True

    def readiness(self) -> dict[str, str]:
        """What is not ready, by part (empty when all is)."""
        problems: dict[str, str] = {}
        if not self.model_ready:
            problems["model"] = "the embedding model is still loading"
        try:
            self.library.home.queue.depth()
        except KbError as exc:
            problems["queue"] = str(exc)
        kbs = self.settings.kbs_dir
        if kbs.exists() and not os.access(kbs, os.R_OK):
            problems["store"] = f"{kbs} cannot be read"
        problems.update(self.library.home.problems())
        return problems

    def kb(self, principal: Principal, name: str | None) -> KnowledgeBase:
        """The knowledge base `name` (default: the server's), if the principal may use it."""
        kb = self.library.kb(name)
        principal.require_kb(kb.name)
        return kb


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, serialised once (orjson), without a validation pass: the response
    models document it, the contract test holds the two together."""
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type="application/json")


async def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(service_of)]
