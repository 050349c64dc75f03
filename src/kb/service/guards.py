"""What every request passes before a route sees it: a bearer token (auth.py), its rate
limit, a size limit on the body, and a cap on requests in flight. One ASGI middleware, so
that /metrics is guarded like the API and a too-large body is refused before it is read
whole. It also times every answer for /metrics, refusals included: a plain ASGI wrapper,
where Starlette's BaseHTTPMiddleware (a task and a stream per request) cost a search in
kb serve about a tenth of its CPU.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kb.errors import StoreError
from kb.service.auth import Authenticator, Denied, RateLimits
from kb.service.errors import body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Probes of load balancers carry no token; the API's documentation and the web page (its
# files, and whether it must ask for a token) hold no data: the page sends a token for that.
OPEN_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/ui"}
OPEN_PREFIXES = ("/static-offline-docs/", "/ui/")
Observe = Callable[[Scope, int], None]  # a refusal, counted in /metrics under its route
Answered = Callable[[Scope, int, float], None]  # a request the app answered: status, perf_counter at start


class BodyTooLarge(Exception):
    """Raised while a body is read past its limit; the app answers it with 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


async def _reply(send: Send, status: int, kind: str, message: str, headers: list | None = None) -> None:
    data = json.dumps(body(kind, message, status)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": data})


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class Guards:
    def __init__(
        self,
        app: ASGIApp,
        auth: Authenticator,
        limits: RateLimits,
        observe: Observe,
        answered: Answered,
        max_body: int,
        max_upload: int,
        max_in_flight: int,
    ) -> None:
        self.app = app
        self.auth = auth
        self.limits = limits
        self.observe = observe
        self.answered = answered
        self.max_body = max_body
        self.max_upload = max_upload
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def _refuse(self, scope: Scope, send: Send, status: int, kind: str, message: str,
                      headers: list | None = None) -> None:  # fmt: skip
        self.observe(scope, status)
        await _reply(send, status, kind, message, headers)

    def _limit(self, scope: Scope) -> int:
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        return self.max_upload if content_type.startswith(b"multipart/") else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        guarded = not _open(scope["path"])
        if guarded:
            try:
                principal = self.auth.authenticate(headers.get(b"authorization"))
                wait = self.limits.admit(principal)
            except Denied as exc:
                await self._refuse(scope, send, 401, "unauthorized", exc.message,
                                   [(b"www-authenticate", b'Bearer realm="kb"')])  # fmt: skip
                return
            except StoreError as exc:  # the token store or the counters are out of reach
                await self._refuse(scope, send, 503, "store_error", str(exc))
                return
            if wait is not None:
                await self._refuse(scope, send, 429, "rate_limited",
                                   f"the token {principal.name!r} may send {principal.rpm} requests a minute",
                                   [(b"retry-after", str(math.ceil(wait)).encode())])  # fmt: skip
                return
            scope.setdefault("state", {})["principal"] = principal
        limit = self._limit(scope)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, 413, "too_large", f"the request body is larger than {limit} bytes; the "
                               "limit is set by serve.max_body_mb (JSON) and serve.max_upload_mb (uploads)")  # fmt: skip
            return
        if guarded and self.in_flight >= self.max_in_flight:
            await self._refuse(scope, send, 429, "busy", f"{self.in_flight} requests are in flight, the most this "
                               "instance takes; retry shortly", [(b"retry-after", b"1")])  # fmt: skip
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        status: int | None = None
        began = time.perf_counter()

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.in_flight += 1
        refused = False
        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if status is None:
                refused = True
                await self._refuse(scope, send, 413, "too_large", f"the request body is larger than {limit} bytes")
        finally:
            self.in_flight -= 1
            if not refused:
                self.answered(scope, status or 500, began)
