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


# Each remedy in an HTTP client's terms: a route or a field, never a shell command.
WORDING = {
    "create_kb": 'create it by ingesting into it (POST /v1/ingest with "kb": "{kb}"), or name another "kb"',
    "add_documents": "add documents with POST /v1/ingest",
    "list_documents": "GET /v1/documents lists what is",
    "list_jobs": "GET /v1/jobs lists the jobs",
    "repair": "the server's administrator can check and repair it",
    "diagnose": "the server's administrator can check and repair it",
    "model_changed": "the server's embedding model changed since it was built; use another knowledge base",
    "write_once": "the server needs write access to it once",
    "providers": "GET /v1/stats shows each provider's errors and breaker",
}


def message(exc: KbError) -> str:
    return exc.explained(WORDING)


def body(kind: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"kind": kind, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def of(exc: KbError) -> dict[str, Any]:
    return body(exc.kind, message(exc), exc.details)
