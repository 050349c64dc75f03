"""Access tokens for `kb serve`: named, scoped, optionally limited to some knowledge bases, to
a number of requests per minute and to a lifetime.

    read   search, ask, chat, embeddings, models; reading documents, jobs, stats, info
    write  read, and ingest, removal, retrying jobs
    admin  everything: tokens, deleting knowledge bases, stats of the whole home

A token's secret is shown once, when it is created; the store keeps its SHA-256 digest only
(as LiteLLM's virtual keys and GitHub's tokens are kept), so a copy of the store grants
nothing. Revoked tokens stay listed, so a server that once had tokens never falls open
when the last one is revoked. The store is `tokens.db` under KB_HOME, or a Redis hash with
shared state (`state.url`), so every instance sees a new or revoked token (service/auth.py
reads the store at most once a second).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from kb.errors import Conflict, InputError, TokenNotFound
from kb.sqlite import Database, Migration

if TYPE_CHECKING:
    import redis

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
PREFIX = "kb_"  # how a kb token looks, so secret scanners and people can tell


def scope_of(value: str) -> Scope:
    for known in SCOPES:
        if value == known:
            return known
    raise InputError(f"{value!r} is not a scope; use one of {', '.join(SCOPES)}", field="scope")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


@dataclass(frozen=True)
class Token:
    name: str
    scope: Scope
    kbs: tuple[str, ...]  # empty: every knowledge base
    rpm: int | None  # requests per minute; None: unlimited
    expires_at: float | None
    created_at: float
    revoked_at: float | None = None
    digest: str = ""

    def allows(self, needed: Scope) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)

    def allows_kb(self, kb: str) -> bool:
        return not self.kbs or kb in self.kbs

    def live(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_json(self) -> dict[str, Any]:
        """As `kb tokens list --json` and GET /v1/tokens show it: never the digest."""
        return {
            "name": self.name,
            "scope": self.scope,
            "kbs": list(self.kbs),
            "rpm": self.rpm,
            "expires_at": _iso(self.expires_at),
            "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Token:
        return cls(fields["name"], scope_of(fields["scope"]), tuple(fields.get("kbs") or ()), fields.get("rpm"),
                   fields.get("expires_at"), fields["created_at"], fields.get("revoked_at"), fields["digest"])  # fmt: skip


def new_token(
    name: str, scope: Scope, kbs: tuple[str, ...], rpm: int | None, expires_at: float | None
) -> tuple[str, Token]:
    """(the secret, shown once; the record to keep)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    return secret, Token(name, scope, kbs, rpm, expires_at, time.time(), None, digest(secret))


class TokenStore(Protocol):
    def add(self, token: Token) -> None: ...
    def all(self) -> list[Token]: ...
    def revoke(self, name: str) -> Token: ...
    def close(self) -> None: ...


_SCHEMA_1 = "CREATE TABLE IF NOT EXISTS tokens (name TEXT PRIMARY KEY, record TEXT NOT NULL);"
MIGRATIONS: list[Migration] = [_SCHEMA_1]


def _not_found(name: str) -> TokenNotFound:
    return TokenNotFound(f"there is no token {name!r}", remedy="list_tokens", name=name)


class SqliteTokenStore:
    """The embedded store: `tokens.db` under the KB home."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, MIGRATIONS)

    def add(self, token: Token) -> None:
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE name = ?", (token.name,)).fetchone():
                raise Conflict(
                    f"a token named {token.name!r} exists (revoked ones are kept); pick another name", name=token.name
                )
            conn.execute("INSERT INTO tokens(name, record) VALUES (?, ?)", (token.name, json.dumps(asdict(token))))

    def all(self) -> list[Token]:
        rows = self._db.execute("SELECT record FROM tokens ORDER BY name").fetchall()
        return [Token.from_fields(json.loads(r["record"])) for r in rows]

    def revoke(self, name: str) -> Token:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT record FROM tokens WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise _not_found(name)
            token = Token.from_fields(json.loads(row["record"]))
            if token.revoked_at is None:
                token = replace(token, revoked_at=time.time())
                conn.execute("UPDATE tokens SET record = ? WHERE name = ?", (json.dumps(asdict(token)), name))
            return token

    def close(self) -> None:
        self._db.close()


class RedisTokenStore:
    """The shared store: one Redis hash, a field per token name."""

    def __init__(self, client: redis.Redis) -> None:
        from kb import state

        self._client = client
        self._key = state.key("tokens")

    def add(self, token: Token) -> None:
        from kb import state

        with state.translated(self._client, "recording a token"):
            if not self._client.hsetnx(self._key, token.name, json.dumps(asdict(token))):
                raise Conflict(
                    f"a token named {token.name!r} exists (revoked ones are kept); pick another name", name=token.name
                )

    def all(self) -> list[Token]:
        from kb import state

        with state.translated(self._client, "reading the tokens"):
            raw = self._client.hgetall(self._key)
        return sorted((Token.from_fields(json.loads(v)) for v in raw.values()), key=lambda t: t.name)

    def revoke(self, name: str) -> Token:
        from kb import state

        def revoke(pipe: Any) -> None:
            raw = pipe.hget(self._key, name)
            if raw is None:
                raise _not_found(name)
            token = Token.from_fields(json.loads(raw))
            pipe.multi()
            if token.revoked_at is None:
                pipe.hset(self._key, name, json.dumps(asdict(replace(token, revoked_at=time.time()))))

        with state.translated(self._client, "revoking a token"):
            self._client.transaction(revoke, self._key)
            raw = self._client.hget(self._key, name)
        if raw is None:  # deleted meanwhile by hand
            raise _not_found(name)
        return Token.from_fields(json.loads(raw))

    def close(self) -> None:
        from kb import state

        state.release(self._client)
