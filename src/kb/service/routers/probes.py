"""The probes and /metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from kb.service import errors
from kb.service.context import ServiceDep

router = APIRouter(tags=["probes"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(service: ServiceDep) -> JSONResponse:
    """Store, queue and model reachable; 503 with the reasons if not."""
    problems = await service.call(service.readiness)
    if problems:
        message = "; ".join(f"{part}: {why}" for part, why in problems.items())
        return JSONResponse(errors.body("not_ready", message) | {"checks": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    """Prometheus text format."""
    text = await service.call(service.observability.text)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
