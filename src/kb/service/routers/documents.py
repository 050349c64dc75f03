"""What the knowledge bases hold: /v1/documents, /v1/info, /v1/kbs, /v1/stats."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query

from kb.service.context import ServiceDep

router = APIRouter(tags=["knowledge bases"])


@router.get("/v1/documents")
async def documents(service: ServiceDep, kb: str | None = None) -> dict:
    """The documents with their chunk counts (`kb list --json`)."""
    found = await service.call(service.library.kb(kb).documents)
    return {"documents": [d.to_json() for d in found]}


@router.delete("/v1/documents")
async def remove(service: ServiceDep, source: str = Query(..., min_length=1), kb: str | None = None) -> dict:
    """Removes a document, or every document under a folder (`kb remove`)."""
    docs, chunks = await service.call(service.library.kb(kb).remove, Path(source))
    return {"documents": docs, "chunks": chunks}


@router.get("/v1/info")
async def info(service: ServiceDep, kb: str | None = None) -> dict:
    """Where the knowledge base lives, its model and its size (`kb info --json`)."""
    return (await service.call(service.library.kb(kb).info)).to_json()


@router.get("/v1/kbs")
async def kbs(service: ServiceDep) -> dict:
    """The knowledge bases of this server (`kb kbs --json`)."""
    return {"kbs": [k.to_json() for k in await service.call(service.library.knowledge_bases)]}


@router.get("/v1/stats")
async def stats(service: ServiceDep, kb: str | None = None, since: str | None = None, all: bool = False) -> dict:
    """The `kb stats --json` figures."""
    library = service.library
    if all:
        return await service.call(library.stats, since)
    return await service.call(library.kb(kb).stats, since)
