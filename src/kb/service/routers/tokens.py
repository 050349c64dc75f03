"""The access tokens: /v1/tokens for admin tokens (as `kb tokens`), and /v1/token, which\nanswers any token what it may do (the web page shows only the controls it may use)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from kb.service.auth import Principal, need
from kb.service.context import ServiceDep, ok
from kb.service.schemas import (
    GUARDED,
    KbName,
    PrincipalModel,
    TokenCreated,
    TokenList,
    TokenModel,
    TokenRequest,
    errors,
)

router = APIRouter(tags=["tokens"], responses=errors(*GUARDED, 403))
Admin = Annotated[Principal, Depends(need("admin", "manage tokens"))]
# Read is the least scope, so this one never answers 403; 503 when the token store is out of reach.
current = APIRouter(tags=["tokens"], responses=errors(*GUARDED, 503))
Holder = Annotated[Principal, Depends(need("read", "read its own token"))]


@current.get("/v1/token", responses={200: {"model": PrincipalModel}})
async def token(principal: Holder) -> Response:
    """The request's token: its name, scope, knowledge bases and rate limit (never its secret)."""
    return ok({"name": principal.name, "scope": principal.scope, "kbs": list(principal.kbs), "rpm": principal.rpm})


@router.get("/v1/tokens", responses={200: {"model": TokenList}, **errors(503)})
async def tokens(service: ServiceDep, principal: Admin) -> Response:
    """Every token, revoked ones included; never a secret."""
    return ok({"tokens": [t.to_json() for t in await service.call(service.library.tokens)]})


@router.post("/v1/tokens", status_code=201, responses={201: {"model": TokenCreated}, **errors(400, 409, 503)})
async def create(body: TokenRequest, service: ServiceDep, principal: Admin) -> Response:
    """A new token; its secret is in this answer and nowhere else."""
    secret, token = await service.call(service.library.create_token, body.name, body.scope, body.kbs, body.rpm,
                                       body.expires)  # fmt: skip
    service.auth.forget()
    return ok({**token.to_json(), "token": secret}, 201)


@router.delete("/v1/tokens/{name}", responses={200: {"model": TokenModel}, **errors(404, 503)})
async def revoke(name: KbName, service: ServiceDep, principal: Admin) -> Response:
    """Revokes a token; every instance sharing the store refuses it within a second."""
    token = await service.call(service.library.revoke_token, name)
    service.auth.forget()
    return ok(token.to_json())
