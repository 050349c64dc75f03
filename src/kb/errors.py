"""The errors kb raises, one hierarchy for the whole package.

    KbError                      anything kb reports to a user
    ├── ConfigError              bad settings, unknown provider kind, wrong model for a KB
    ├── InputError               a question, query or argument kb refuses (empty, too long, binary)
    ├── NotFound                 something named that does not exist
    │   ├── KbNotFound           a knowledge base
    │   ├── JobNotFound          a background job
    │   ├── DocumentNotFound     a document (or folder) that is not in the knowledge base
    │   ├── NoMatchingDocuments  a search filter that leaves no document of the knowledge base
    │   ├── ProviderNotFound     a provider asked for by name that the chain does not have
    │   └── TokenNotFound        an access token of kb serve
    ├── EmptyKb                  a knowledge base without documents, asked a question
    ├── Conflict                 the request does not fit the current state (retrying a running job)
    ├── Forbidden                a path outside the service's allowed roots
    ├── IngestError              a file that cannot be read or parsed
    ├── StoreError               the vector store or manifest cannot be opened or written
    │   └── LockTimeout          another kb process holds the write lock
    ├── WebhookError             a webhook URL refused (SSRF guard, bad scheme) or its secret unusable;
    │                            `retryable` when only a DNS look-up failed
    └── ProviderError            a model provider failed to answer
        ├── ProviderTimeout      no answer before the deadline        (retryable)
        ├── ProviderUnavailable  connection refused/reset, 5xx        (retryable)
        ├── RateLimited          429; carries retry_after seconds     (retryable)
        ├── ProviderRejected     auth or another 4xx: retrying won't help
        ├── BadResponse          the answer could not be parsed       (retryable)
        ├── CircuitOpen          the breaker skipped this provider
        └── AllProvidersFailed   every link of the chain failed; carries the attempts

Third-party exceptions are translated into these at the adapter that meets them
(`raise ... from exc`), so nothing above the adapters knows vendor types.

An error carries data, not a front-end's words: its `kind` (snake case, stable), a message
that says what is wrong, `details` (the knowledge base, the path, the field...) and, when
there is one, a `remedy` naming what would fix it. Each front-end words the remedy its own
way (`kb.cli.advice`: the command to run; the HTTP service: the route; MCP: the tool), so an
HTTP client is never told to type a shell command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

Remedy = Literal[
    "create_kb",  # details: kb — the knowledge base does not exist yet: ingest into it, or pick another
    "add_documents",  # details: kb — it exists but holds nothing
    "list_documents",  # details: kb — a document named that it does not hold
    "list_jobs",  # a job id that does not exist
    "list_tokens",  # a token name that does not exist
    "repair",  # details: kb — a damaged index or manifest that a repair rebuilds
    "diagnose",  # details: kb — something a health check would explain
    "model_changed",  # details: kb, built_with, configured
    "write_once",  # details: path — a read-only file from an older kb that one write would migrate
    "providers",  # no provider answered: check the configured chain and its stats
]


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class KbError(Exception):
    """Base class. `str(error)` is the message alone; front-ends add the remedy."""

    kind: ClassVar[str] = "kb_error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = _snake(cls.__name__)

    def __init__(self, message: str, *, remedy: Remedy | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.details: dict[str, Any] = details

    def explained(self, wording: Mapping[str, str], **extra: Any) -> str:
        """The message, then the remedy in one front-end's words: `wording` maps each remedy
        to a template, filled from the details (and `extra`)."""
        template = wording.get(self.remedy or "")
        if template is None:
            return self.message
        return f"{self.message}; {template.format_map(_Fields({**self.details, **extra}))}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class ConfigError(KbError):
    pass


class InputError(KbError):
    """`details["field"]` names the argument when there is one (front-ends name it their way)."""


class NotFound(KbError):
    pass


class KbNotFound(NotFound):
    pass


class JobNotFound(NotFound):
    pass


class DocumentNotFound(NotFound):
    pass


class NoMatchingDocuments(NotFound):
    """`details["filter"]` holds the filter as JSON (kb.options.SearchFilter.to_json)."""


class ProviderNotFound(NotFound):
    pass


class TokenNotFound(NotFound):
    pass


class EmptyKb(KbError):
    kind = "kb_empty"


class Conflict(KbError):
    pass


class Forbidden(KbError):
    pass


class IngestError(KbError):
    pass


class StoreError(KbError):
    pass


class LockTimeout(StoreError):
    pass


class WebhookError(KbError):
    def __init__(self, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(message, **details)
        self.retryable = retryable


class ProviderError(KbError):
    """`failure` names it in attempt records and metrics (timeout, rate_limited...)."""

    retryable = False
    failure = "error"

    def __init__(self, message: str, *, provider: str = "", **details: Any) -> None:
        super().__init__(message, **details)
        self.provider = provider


class ProviderTimeout(ProviderError):
    retryable = True
    failure = "timeout"


class ProviderUnavailable(ProviderError):
    retryable = True
    failure = "unavailable"


class RateLimited(ProviderError):
    retryable = True
    failure = "rate_limited"

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    failure = "rejected"


class BadResponse(ProviderError):
    retryable = True
    failure = "bad_response"


class CircuitOpen(ProviderError):
    failure = "circuit_open"


class AllProvidersFailed(ProviderError):
    failure = "all_failed"

    def __init__(self, message: str, attempts: list[Any] | None = None) -> None:
        super().__init__(message, remedy="providers")
        self.attempts = attempts or []
