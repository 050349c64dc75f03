"""kb's errors as HTTP responses: the CLI's message and kind, the right status.

{"error": {"kind": "kb_not_found", "message": "knowledge base 'x' does not exist ..."}}
"""

from __future__ import annotations

import re

from kb.errors import (
    AllProvidersFailed,
    ConfigError,
    Conflict,
    Forbidden,
    InputError,
    KbError,
    KbNotFound,
    LockTimeout,
    ProviderError,
    StoreError,
    WebhookError,
)

_STATUS: list[tuple[type[KbError], int]] = [
    (KbNotFound, 404),
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


def kind_of(exc: Exception) -> str:
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str) and kind != "error":
        return kind
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def body(kind: str, message: str) -> dict:
    return {"error": {"kind": kind, "message": message}}
