"""POST /v1/ingest: paths on the server (only under the configured roots) or uploaded files,
turned into a queued job. An upload is on disk under KB_HOME before the job is queued, so
an accepted upload is never lost.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError

from kb.errors import Forbidden, InputError
from kb.options import IngestScope

if TYPE_CHECKING:
    from kb.jobs.store import Job
    from kb.service.context import Service

_SAFE_NAME = re.compile(r"[^\w. -]+")


class IngestRequest(BaseModel):
    paths: list[str] = Field(..., min_length=1, max_length=1000, description="Files and folders on the server.")
    kb: str | None = None
    callback_url: str | None = Field(None, description="Also notify this URL (signed) when the job ends.")
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    hidden: bool = False
    prune: bool = False


def allowed_path(given: str, roots: list[str]) -> Path:
    """The path if it lies under a root once `..` and symlinks are resolved; else Forbidden."""
    if not roots:
        raise Forbidden("this server reads no server paths (no serve.roots / KB_SERVE_ROOTS); upload the files instead")
    if not given.strip() or "\x00" in given:
        raise InputError("an empty or binary path was given")
    real = os.path.realpath(given)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return Path(real)
    raise Forbidden(f"{given} is outside the folders this server may read ({', '.join(roots)}); see serve.roots")


async def accept_ingest(service: Service, request: Request) -> Job:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _uploads(service, request)
    try:
        body = IngestRequest.model_validate(await request.json())
    except ValidationError as exc:
        raise InputError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    except ValueError as exc:
        raise InputError(f"the body is not JSON ({exc}); send JSON or multipart/form-data") from None
    paths = [allowed_path(p, service.settings.serve.roots) for p in body.paths]
    _check_callback(service, body.callback_url)
    scope = IngestScope.of(paths, body.include, body.exclude, body.hidden, body.prune)
    return await service.call(service.library.enqueue_ingest, body.kb, scope, body.callback_url)


def _check_callback(service: Service, url: str | None) -> None:
    if url:
        from kb.jobs.webhooks import check_url

        check_url(url, service.settings.webhooks_allow_private)


async def _uploads(service: Service, request: Request) -> Job:
    form = await request.form(max_files=1000, max_fields=20)
    folder = service.settings.uploads_dir / f"upl_{uuid.uuid4().hex[:20]}"
    saved = 0
    try:
        folder.mkdir(parents=True)
        for key, value in form.multi_items():
            if key != "files" or isinstance(value, str):
                continue
            name = _safe_name(value.filename or f"upload-{saved}")
            target = _unique(folder / name)
            with target.open("wb") as out:
                shutil.copyfileobj(value.file, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())  # accepted means on disk
            saved += 1
        if not saved:
            raise InputError('no files in the upload; send them as multipart form field "files"')
        callback = _field(form, "callback_url")
        _check_callback(service, callback)
        return await service.call(service.library.enqueue_ingest, _field(form, "kb"), [folder], callback)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # not accepted: nothing is kept
        raise
    finally:
        await form.close()


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")).strip()
    cleaned = _SAFE_NAME.sub("_", base).lstrip(".") or "upload"
    return cleaned[:200]


def _unique(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate
