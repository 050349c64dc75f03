"""The probes and /metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from kb.service import errors
from kb.service.auth import Principal, need
from kb.service.context import ServiceDep, ok
from kb.service.schemas import GUARDED, ErrorBody, Status
from kb.service.schemas import errors as error_responses

router = APIRouter(tags=["probes"])


@router.get("/healthz", responses={200: {"model": Status}})
async def healthz() -> Response:
    """The process is up (no token needed)."""
    return ok({"status": "ok"})


@router.get("/readyz", responses={200: {"model": Status}, 503: {"model": ErrorBody, "description": "Not ready: "
                                  "`checks` names each part that is not, and why."}})  # fmt: skip
async def readyz(service: ServiceDep) -> JSONResponse:
    """Store, queue and model reachable; 503 with the reasons if not (no token needed)."""
    problems = await service.call(service.readiness)
    if problems:
        message = "; ".join(f"{part}: {why}" for part, why in problems.items())
        return JSONResponse(errors.body("not_ready", message, 503) | {"checks": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text "
                     "format, version 0.0.4."}, **error_responses(*GUARDED, 403)},
)  # fmt: skip
async def metrics(
    service: ServiceDep, principal: Annotated[Principal, Depends(need("read", "read metrics"))]
) -> Response:
    """Prometheus text format."""
    text = await service.call(service.observability.text)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
