"""POST /v1/ingest: paths on the server (only under the configured roots) or uploaded files,
turned into a queued job. An upload is on disk under KB_HOME before the job is queued, so
an accepted upload is never lost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from kb.answering.question import check_text
from kb.errors import Forbidden, InputError
from kb.options import IngestScope
from kb.service.schemas import KB_NAME_PATTERN, IngestRequest

if TYPE_CHECKING:
    from kb.jobs.store import Job
    from kb.service.auth import Principal
    from kb.service.context import Service

_SAFE_NAME = re.compile(r"[^\w. -]+")


def allowed_path(given: str, roots: list[str]) -> Path:
    """The path if it lies under a root once `..` and symlinks are resolved and exists; else
    Forbidden (outside) or InputError (missing)."""
    if not roots:
        raise Forbidden("this server reads no server paths (no serve.roots / KB_SERVE_ROOTS); upload the files instead")
    check_text(given, "the path", "paths")
    if not given.strip() or "\x00" in given:
        raise InputError("an empty or binary path was given", field="paths")
    real = os.path.realpath(given)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            if not os.path.exists(real):
                raise InputError(f"{given} does not exist on the server", field="paths", path=given)
            return Path(real)
    raise Forbidden(f"{given} is outside the folders this server may read ({', '.join(roots)}); see serve.roots")


def document_path(source: str, root: str | None, roots: list[str]) -> Path:
    """A document to remove: an absolute path, or one relative to `root`, which must be one
    of the server's roots; never relative to the server's working directory."""
    check_text(source, "the source", "source")
    if root is not None:
        if root not in roots and os.path.realpath(root) not in {os.path.realpath(r) for r in roots}:
            raise InputError(f"{root} is not one of this server's roots ({', '.join(roots) or 'none'})", field="root")
        return Path(os.path.normpath(os.path.join(root, source)))
    if not os.path.isabs(source):
        raise InputError(f"{source} is relative: give an absolute path, or `root` naming one of the server's roots "
                         "it is relative to", field="source")  # fmt: skip
    return Path(os.path.normpath(source))


async def accept_ingest(service: Service, request: Request, principal: Principal) -> Job:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _uploads(service, request, principal)
    try:  # parsed as FastAPI parses the other routes' bodies, so the same mistake gets the same answer
        body = IngestRequest.model_validate(json.loads(await request.body()))
    except ValueError as exc:  # not JSON at all (ValidationError is a ValueError too: first)
        if isinstance(exc, ValidationError):
            raise RequestValidationError(exc.errors()) from None
        raise RequestValidationError([{"loc": ("body",), "msg": f"not JSON ({exc})", "type": "json_invalid"}]) from None
    kb = _kb_name(service, principal, body.kb)
    paths = [allowed_path(p, service.settings.serve.roots) for p in body.paths]
    _check_callback(service, body.callback_url)
    scope = IngestScope.of(paths, body.include, body.exclude, body.hidden, body.prune)
    return await service.call(service.library.enqueue_ingest, kb, scope, body.callback_url)


def _kb_name(service: Service, principal: Principal, name: str | None) -> str:
    kb = service.settings.kb if name is None else name
    if not re.match(KB_NAME_PATTERN, kb):  # as the JSON body's schema says, for the form's field too
        raise RequestValidationError([{"loc": ("body", "kb"), "msg": f"{kb!r} is not a knowledge base name",
                                       "type": "string_pattern_mismatch"}])  # fmt: skip
    principal.require_kb(kb)
    return kb


def _check_callback(service: Service, url: str | None) -> None:
    """A callback kb could not sign, or may not send, is refused now: never accepted and dropped."""
    if not url:
        return
    from kb.jobs.webhooks import Allow, check_url, read_secret

    check_text(url, "callback_url", "callback_url")
    check_url(url, Allow.from_settings(service.settings))
    read_secret(service.settings.webhook_callback_secret_env)


async def _uploads(service: Service, request: Request, principal: Principal) -> Job:
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
            raise InputError('no files in the upload; send them as multipart form field "files"', field="files")
        given = form.get("kb")
        kb = _kb_name(service, principal, given if isinstance(given, str) else None)
        callback = _field(form, "callback_url")
        _check_callback(service, callback)
        return await service.call(service.library.enqueue_ingest, kb, [folder], callback)
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
