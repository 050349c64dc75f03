"""The errors kb raises, one hierarchy for the whole package.

    KbError                      anything kb reports to a user
    ├── ConfigError              bad settings, unknown provider kind, wrong model for a KB
    ├── InputError               a question or query kb refuses (empty, too long, binary)
    ├── KbNotFound               a knowledge base (or job, document) that does not exist
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
(`raise ... from exc`), so nothing above the adapters knows vendor types. Every message
says what to do next.
"""

from __future__ import annotations


class KbError(Exception):
    """Base class; the CLI prints str(error) as one line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(KbError):
    exit_code = 2


class InputError(KbError):
    exit_code = 2


class KbNotFound(KbError):
    exit_code = 2


class Conflict(KbError):
    pass


class Forbidden(KbError):
    exit_code = 2


class IngestError(KbError):
    pass


class StoreError(KbError):
    pass


class LockTimeout(StoreError):
    pass


class WebhookError(KbError):
    exit_code = 2

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ProviderError(KbError):
    retryable = False
    kind = "error"

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.provider = provider


class ProviderTimeout(ProviderError):
    retryable = True
    kind = "timeout"


class ProviderUnavailable(ProviderError):
    retryable = True
    kind = "unavailable"


class RateLimited(ProviderError):
    retryable = True
    kind = "rate_limited"

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    kind = "rejected"


class BadResponse(ProviderError):
    retryable = True
    kind = "bad_response"


class CircuitOpen(ProviderError):
    kind = "circuit_open"


class AllProvidersFailed(ProviderError):
    kind = "all_failed"

    def __init__(self, message: str, attempts: list | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts or []
