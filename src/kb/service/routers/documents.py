"""What the knowledge bases hold: /v1/documents, /v1/info, /v1/kbs, /v1/stats."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from kb.service.auth import Principal, need
from kb.service.context import ServiceDep, ok
from kb.service.schemas import (
    DURATION_PATTERN,
    GUARDED,
    DocumentList,
    InfoModel,
    KbList,
    KbName,
    Removed,
    StatsModel,
    StatsSeriesModel,
    Text,
    errors,
)
from kb.service.uploads import document_path

router = APIRouter(tags=["knowledge bases"], responses=errors(*GUARDED, 403, 404))
Reader = Annotated[Principal, Depends(need("read", "read knowledge bases"))]
Writer = Annotated[Principal, Depends(need("write", "remove documents"))]
Admin = Annotated[Principal, Depends(need("admin", "delete knowledge bases or read the stats of every one"))]
SERIES = "Over time instead: buckets of this width (e.g. 5m, 1h) over `since` (default 24h), at most 1000 of them."


@router.get("/v1/documents", responses={200: {"model": DocumentList}, **errors(503)})
async def documents(service: ServiceDep, principal: Reader, kb: KbName | None = None) -> Response:
    """The documents with their chunk counts (`kb list --json`)."""
    found = await service.call(service.kb(principal, kb).documents)
    return ok({"documents": [d.to_json() for d in found]})


@router.delete("/v1/documents", responses={200: {"model": Removed}, **errors(400, 409, 503)})
async def remove(
    service: ServiceDep,
    principal: Writer,
    source: Annotated[Text, Query(min_length=1, description="An absolute path, or one relative to `root`.")],
    root: Annotated[Text | None, Query(description="One of the server's roots that `source` is relative to.")] = None,
    kb: KbName | None = None,
) -> Response:
    """Removes a document, or every document under a folder (`kb remove`). A relative
    `source` is taken from `root`, one of the server's roots, never from where the server runs."""
    target = document_path(source, root, service.settings.serve.roots)
    docs, chunks = await service.call(service.kb(principal, kb).remove, target)
    return ok({"documents": docs, "chunks": chunks})


@router.get("/v1/info", responses={200: {"model": InfoModel}, **errors(503)})
async def info(service: ServiceDep, principal: Reader, kb: KbName | None = None) -> Response:
    """Where the knowledge base lives, its model and its size (`kb info --json`)."""
    return ok((await service.call(service.kb(principal, kb).info)).to_json())


@router.get("/v1/kbs", responses={200: {"model": KbList}, **errors(503)})
async def kbs(service: ServiceDep, principal: Reader) -> Response:
    """The knowledge bases of this server that the token may use (`kb kbs --json`)."""
    found = await service.call(service.library.knowledge_bases)
    return ok({"kbs": [k.to_json() for k in found if principal.every_kb or k.kb in principal.kbs]})


@router.delete("/v1/kbs/{name}", responses={200: {"model": KbList}, **errors(409, 503)})
async def delete_kb(
    name: Annotated[KbName, Path(examples=["notes"])], service: ServiceDep, principal: Admin
) -> Response:
    """Deletes a knowledge base with its index and manifest (`kb kbs delete`; the files
    it was built from are not touched). Answers the knowledge bases that remain."""
    principal.require_kb(name)
    await service.call(service.library.delete, name)
    found = await service.call(service.library.knowledge_bases)
    return ok({"kbs": [k.to_json() for k in found]})


@router.get(
    "/v1/stats",
    responses={200: {"model": StatsModel | StatsSeriesModel, "description": "The figures; with `series`, the "
                     "figures over time."}, **errors(400, 503)},
)  # fmt: skip
async def stats(
    service: ServiceDep,
    principal: Reader,
    kb: KbName | None = None,
    since: Annotated[str | None, Query(pattern=DURATION_PATTERN, description="e.g. 1h, 7d")] = None,
    all: bool = False,
    series: Annotated[str | None, Query(pattern=DURATION_PATTERN, description=SERIES)] = None,
) -> Response:
    """The `kb stats --json` figures of one knowledge base, or (`all`, admin) of every one.
    With `series`, the same over time (`kb stats --series --json`): buckets of that width,
    aligned to multiples of it, over `since`."""
    library = service.library
    if all:
        principal.require("admin", "read the stats of every knowledge base")
        if series is not None:
            return ok(await service.call(library.stats_series, series, since))
        return ok(await service.call(library.stats, since))
    found = service.kb(principal, kb)
    if series is not None:
        return ok(await service.call(found.stats_series, series, since))
    return ok(await service.call(found.stats, since))
