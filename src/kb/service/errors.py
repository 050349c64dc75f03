"""kb's errors as HTTP responses: the status, and the message with the remedy in the HTTP
client's terms (a route, a field), never a shell command. One shape on every route, which is
also OpenAI's (`type`, `param`, `code`), so the official clients raise the right exceptions:

{"error": {"kind": "kb_not_found", "message": "knowledge base 'x' does not exist ...",
           "details": {...}, "type": "not_found_error", "param": null, "code": "kb_not_found"}}
"""

from __future__ import annotations

from typing import Any

from kb.errors import (
    AllProvidersFailed,
    ConfigError,
    Conflict,
    EmptyKb,
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
    (EmptyKb, 409),
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
    "list_tokens": "GET /v1/tokens lists them",
    "repair": "the server's administrator can check and repair it",
    "diagnose": "the server's administrator can check and repair it",
    "model_changed": "the server's embedding model changed since it was built; use another knowledge base",
    "write_once": "the server needs write access to it once",
    "providers": "GET /v1/stats shows each provider's errors and breaker",
}


def message(exc: KbError) -> str:
    return exc.explained(WORDING)


_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 409: "conflict_error", 429: "rate_limit_error"}  # fmt: skip


def body(kind: str, message: str, status: int, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"kind": kind, "message": message}
    if details:
        error["details"] = details
    kind_of_type = "api_error" if status >= 500 else "invalid_request_error"
    error.update(type=_OPENAI_TYPES.get(status, kind_of_type), param=(details or {}).get("field"), code=kind)
    return {"error": error}


def of(exc: KbError) -> dict[str, Any]:
    return body(exc.kind, message(exc), status_of(exc), exc.details)
