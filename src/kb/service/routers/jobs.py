"""Background ingestion: /v1/ingest and /v1/jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from kb.options import JobState
from kb.service.auth import Principal, need
from kb.service.context import ServiceDep, ok
from kb.service.schemas import GUARDED, UPLOAD_SCHEMA, IngestAccepted, IngestRequest, JobList, JobModel, KbName, errors
from kb.service.uploads import accept_ingest

router = APIRouter(tags=["jobs"], responses=errors(*GUARDED, 403, 404))
Reader = Annotated[Principal, Depends(need("read", "read jobs"))]
Writer = Annotated[Principal, Depends(need("write", "ingest or retry jobs"))]

INGEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": IngestRequest.model_json_schema()},
        "multipart/form-data": {"schema": UPLOAD_SCHEMA},
    },
}


@router.post(
    "/v1/ingest",
    status_code=202,
    responses={202: {"model": IngestAccepted, "description": "Queued; `Location` names the job.",
                     "headers": {"Location": {"schema": {"type": "string"}}}}, **errors(400, 503)},
    openapi_extra={"requestBody": INGEST_BODY},
)  # fmt: skip
async def ingest(request: Request, service: ServiceDep, principal: Writer) -> Response:
    """Queues an ingest and answers at once with the job (202): JSON `{"paths": [...], "kb",
    "callback_url", "include", "exclude", "hidden", "prune"}` for files on the server (under its
    roots; they must exist), or multipart uploads (`files`, plus `kb` and `callback_url`). A
    `callback_url` needs the server's signing secret (webhook_callback_secret_env) and a
    receiver the SSRF guard lets through; either is checked before anything is queued."""
    job = (await accept_ingest(service, request, principal)).to_json()
    return ok({"job_id": job["id"], "job": job}, 202, {"location": f"/v1/jobs/{job['id']}"})


@router.get("/v1/jobs", responses={200: {"model": JobList}})
async def jobs(
    service: ServiceDep,
    principal: Reader,
    kb: KbName | None = None,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Recent jobs, newest first: of `kb`, or of every knowledge base the token may use. A
    knowledge base that does not exist and has no jobs is 404, as on every route."""
    library = service.library
    if kb is not None:
        principal.require_kb(kb)
    found = await service.call(library.jobs, kb, state, limit if principal.every_kb else 1000)
    if kb is not None and not found and not await service.call(library.home.exists, kb):
        await service.call(library.home.require, kb)
    if kb is None and not principal.every_kb:
        found = [j for j in found if j.kb in principal.kbs][:limit]
    return ok({"jobs": [j.to_json() for j in found]})


@router.get("/v1/jobs/{job_id}", responses={200: {"model": JobModel}})
async def job(job_id: str, service: ServiceDep, principal: Reader) -> Response:
    """One job: state, progress, the ingest report when done, webhook deliveries."""
    found = await service.call(service.library.job, job_id)
    principal.require_kb(found.kb)
    return ok(found.to_json())


@router.post("/v1/jobs/{job_id}/retry", status_code=202, responses={202: {"model": JobModel}, **errors(409, 503)})
async def retry(job_id: str, service: ServiceDep, principal: Writer) -> Response:
    """Queues a done or failed job again."""
    principal.require_kb((await service.call(service.library.job, job_id)).kb)
    return ok((await service.call(service.library.retry_job, job_id)).to_json(), 202)
