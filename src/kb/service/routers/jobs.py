"""Background ingestion: /v1/ingest and /v1/jobs."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from kb.options import job_state
from kb.service.context import ServiceDep
from kb.service.uploads import accept_ingest

router = APIRouter(tags=["jobs"])


@router.post("/v1/ingest", status_code=202)
async def ingest(request: Request, service: ServiceDep) -> JSONResponse:
    """Queues an ingest and answers at once with the job (202). JSON `{"paths": [...],
    "kb", "callback_url"}` for files on the server (under the configured roots), or
    multipart uploads (`files`, plus `kb` and `callback_url` fields)."""
    job = (await accept_ingest(service, request)).to_json()
    return JSONResponse({"job_id": job["id"], "job": job}, status_code=202,
                        headers={"location": f"/v1/jobs/{job['id']}"})  # fmt: skip


@router.get("/v1/jobs")
async def jobs(
    service: ServiceDep,
    kb: str | None = None,
    state: str | None = Query(None, pattern="^(queued|running|done|failed)$"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict:
    """Recent jobs, newest first (all knowledge bases unless `kb` is given)."""
    library = service.library
    name = None if kb is None else library.kb(kb).name  # a malformed name is refused
    found = await service.call(library.jobs, name, None if state is None else job_state(state), limit)
    return {"jobs": [j.to_json() for j in found]}


@router.get("/v1/jobs/{job_id}")
async def job(job_id: str, service: ServiceDep) -> dict:
    """One job: state, progress, the ingest report when done, webhook deliveries."""
    return (await service.call(service.library.job, job_id)).to_json()


@router.post("/v1/jobs/{job_id}/retry", status_code=202)
async def retry(job_id: str, service: ServiceDep) -> dict:
    """Queues a done or failed job again."""
    return (await service.call(service.library.retry_job, job_id)).to_json()
