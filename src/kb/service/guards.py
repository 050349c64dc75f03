"""What every request passes before a route sees it: a bearer token, a size limit on the
body, and a cap on requests in flight. One ASGI middleware, so that /docs and /metrics are
guarded like the API and a too-large body is refused before it is read whole.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kb.service.errors import body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = {"/healthz", "/readyz"}  # probes of load balancers and orchestrators carry no token


class BodyTooLarge(Exception):
    """Raised while a body is read past its limit; the app answers it with 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


async def _reply(send: Send, status: int, kind: str, message: str, headers: list | None = None) -> None:
    data = json.dumps(body(kind, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": data})


class Guards:
    def __init__(
        self,
        app: ASGIApp,
        tokens: list[str],
        max_body: int,
        max_upload: int,
        max_in_flight: int,
    ) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens if t]
        self.max_body = max_body
        self.max_upload = max_upload
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    def _authorised(self, scope: Scope) -> bool:
        if not self.tokens:
            return True
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        # Compare against every token, always, in constant time: no early exit to time.
        return any([hmac.compare_digest(token.strip(), known) for known in self.tokens])

    def _limit(self, scope: Scope) -> int:
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        return self.max_upload if content_type.startswith(b"multipart/") else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] not in OPEN_PATHS and not self._authorised(scope):
            await _reply(send, 401, "unauthorized",
                         "missing or wrong bearer token; send `Authorization: Bearer <token>` "
                         "with one of the tokens in KB_SERVE_TOKENS",
                         [(b"www-authenticate", b'Bearer realm="kb"')])  # fmt: skip
            return
        limit = self._limit(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, "too_large", f"the request body is larger than {limit} bytes; the limit is set "
                         "by serve.max_body_mb (JSON) and serve.max_upload_mb (uploads)")  # fmt: skip
            return
        if scope["path"] not in OPEN_PATHS and self.in_flight >= self.max_in_flight:
            await _reply(send, 429, "busy", f"{self.in_flight} requests are in flight, the most this instance "
                         "takes; retry shortly", [(b"retry-after", b"1")])  # fmt: skip
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

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        self.in_flight += 1
        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _reply(send, 413, "too_large", f"the request body is larger than {limit} bytes")
        finally:
            self.in_flight -= 1
