"""Who is asking, and what they may do: bearer tokens, their scopes and knowledge bases, and
their rate limits.

A request's token is looked up among the tokens of KB_SERVE_TOKENS (admin, every knowledge
base) and those of the token store (kb/tokens.py: `kb tokens create`), which this instance
reads again at most once a second, so a new or revoked token reaches every instance within
a second. With neither, the server is open (it then listens on loopback only: server.py).
Secrets are compared by their digests, in constant time.

Rate limits count requests per token per minute: in this process, or with shared state
across every instance (one Redis round trip per request of a limited token).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kb.errors import Forbidden
from kb.tokens import SCOPES, Scope, Token, digest

if TYPE_CHECKING:
    from kb.home import Home

REFRESH_S = 1.0
bearer = HTTPBearer(auto_error=False, description="A token of KB_SERVE_TOKENS, or one made by `kb tokens create`.")


@dataclass(frozen=True)
class Principal:
    """The holder of the request's token."""

    name: str
    scope: Scope
    kbs: tuple[str, ...] = ()  # empty: every knowledge base
    rpm: int | None = None

    def require(self, scope: Scope, doing: str) -> None:
        if SCOPES.index(self.scope) < SCOPES.index(scope):
            raise Forbidden(f"the token {self.name!r} ({self.scope}) may not {doing}: that needs the {scope} scope",
                            token=self.name, needed=scope)  # fmt: skip

    def require_kb(self, kb: str) -> None:
        if self.kbs and kb not in self.kbs:
            raise Forbidden(f"the token {self.name!r} may use only the knowledge bases {', '.join(self.kbs)}",
                            token=self.name, kb=kb)  # fmt: skip

    @property
    def every_kb(self) -> bool:
        return not self.kbs


OPEN = Principal("anyone", "admin")  # no tokens configured: a loopback-only server


class Denied(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Authenticator:
    def __init__(self, static_tokens: list[str], home: Home) -> None:
        self._static = {digest(t): Principal("KB_SERVE_TOKENS", "admin") for t in static_tokens if t}
        self._home = home
        self._stored: dict[str, Token] = {}
        self._read_at = -REFRESH_S
        self._lock = threading.Lock()

    def _tokens(self) -> dict[str, Token]:
        now = time.monotonic()
        if now - self._read_at >= REFRESH_S:
            with self._lock:
                if now - self._read_at >= REFRESH_S:
                    self._stored = {t.digest: t for t in self._home.tokens.all()}
                    self._read_at = now
        return self._stored

    def forget(self) -> None:
        """Read the store again at the next request (this instance changed it)."""
        self._read_at = -REFRESH_S

    @property
    def required(self) -> bool:
        """Whether requests must carry a token: once any exists, revoked ones included."""
        return bool(self._static) or bool(self._tokens())

    def authenticate(self, header: bytes | None) -> Principal:
        """The principal of an `Authorization` header, or Denied saying why."""
        stored = self._tokens()
        if not self._static and not stored:
            return OPEN
        scheme, _, secret = (header or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not secret.strip():
            raise Denied("this server needs a bearer token: send `Authorization: Bearer <token>`")
        seen = digest(secret.strip().decode("utf-8", "replace"))
        # Every known digest is compared, always, in constant time: nothing to time.
        found = [p for d, p in self._static.items() if hmac.compare_digest(d, seen)]
        tokens = [t for d, t in stored.items() if hmac.compare_digest(d, seen)]
        if found:
            return found[0]
        if not tokens:
            raise Denied("unknown bearer token; use one of KB_SERVE_TOKENS or one made by `kb tokens create`")
        token = tokens[0]
        if token.revoked_at is not None:
            raise Denied(f"the token {token.name!r} was revoked")
        if not token.live(time.time()):
            raise Denied(f"the token {token.name!r} expired")
        return Principal(token.name, token.scope, token.kbs, token.rpm)


class RateLimits:
    """Requests per token per minute, in fixed windows: locally, or on Redis for every instance."""

    def __init__(self, home: Home) -> None:
        self._home = home
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def admit(self, principal: Principal) -> float | None:
        """None if the request may go ahead, else the seconds until the next window."""
        if principal.rpm is None:
            return None
        now = time.time()
        window = int(now // 60)
        count = self._count(principal.name, window)
        return None if count <= principal.rpm else 60 - now % 60

    def _count(self, name: str, window: int) -> int:
        client = self._home.state
        if client is not None:
            from kb import state

            key = state.key("rate", name, str(window))
            with state.translated(client, "counting requests"):
                pipe = client.pipeline(transaction=False)
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = pipe.execute()
            return int(count)
        with self._lock:
            for old in [k for k in self._counts if k[1] < window]:
                del self._counts[old]
            self._counts[(name, window)] = self._counts.get((name, window), 0) + 1
            return self._counts[(name, window)]


def principal_of(request: Request) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else OPEN


def need(scope: Scope, doing: str) -> Callable[..., Awaitable[Principal]]:
    """A route dependency: the request's principal, which must hold `scope`. The bearer
    parameter puts the security scheme in the OpenAPI document (Guards has checked it).
    Async, as every dependency of kb's routes: FastAPI runs a plain function on a worker
    thread, a hand-off per request for a dictionary look-up."""

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)
    ) -> Principal:
        principal = principal_of(request)
        principal.require(scope, doing)
        return principal

    dependency.scope = scope  # type: ignore[attr-defined]  # read by the API reference (scripts/api_reference.py)
    return dependency
