"""kb's errors as HTTP responses: the status, and the message with the remedy in the HTTP
client's terms (a route, a field), never a shell command.

{"error": {"kind": "kb_not_found", "message": "knowledge base 'x' does not exist ...", "details": {...}}}
"""

from __future__ import annotations

from typing import Any

from kb.errors import (
    AllProvidersFailed,
    ConfigError,
    Conflict,
    Forbidden,
    InputError,
    KbError,
    LockTimeout,
    NotFound,
    ProviderError,
    StoreError,
    WebhookError,
)

_STATUS: list[tuple[type[KbError], int]] = [
    (NotFound, 404),
    (Forbidden, 403),
    (LockTimeout, 409),
    (Conflict, 409),
    (InputError, 400),
    (ConfigError, 400),
    (WebhookError, 400),
    (AllProvidersFailed, 503),
    (ProviderError, 503),
    (StoreError, 503),
]


def status_of(exc: KbError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400  # kb refused the request for the reason its message gives


def _remedy(exc: KbError) -> str | None:
    d = exc.details
    match exc.remedy:
        case "create_kb":
            return f'create it by ingesting into it (POST /v1/ingest with "kb": "{d.get("kb")}"), or name another "kb"'
        case "add_documents":
            return "add documents with POST /v1/ingest"
        case "list_documents":
            return "GET /v1/documents lists what is"
        case "list_jobs":
            return "GET /v1/jobs lists the jobs"
        case "repair" | "diagnose":
            return "the server's administrator can check and repair it"
        case "model_changed":
            return "the server's embedding model changed since it was built; use another knowledge base"
        case "write_once":
            return "the server needs write access to it once"
        case "providers":
            return "GET /v1/stats shows each provider's errors and breaker"
    return None


def message(exc: KbError) -> str:
    remedy = _remedy(exc)
    return f"{exc}; {remedy}" if remedy else str(exc)


def body(kind: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"kind": kind, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def of(exc: KbError) -> dict[str, Any]:
    return body(exc.kind, message(exc), exc.details)
