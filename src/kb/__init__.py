"""kb: build and query knowledge bases from your own documents.

The library API, the one the CLI, the HTTP service, the MCP server and the job worker use::

    import kb

    with kb.open("notes", home="~/kb") as notes:
        report = notes.ingest(["~/notes"])          # IngestReport: added, updated, failed...
        for hit in notes.search("varroa treatment", k=5):
            print(hit.score, hit.source, hit.text)   # Hit: source, text, score, page...
        answer = notes.ask("When should I treat varroa?")
        print(answer.answer, [c.source for c in answer.citations])

Every value has `to_json()`, which is the CLI's `--json` output. Errors are `kb.KbError`s
with a `kind`, a message, `details` and, where there is one, a `remedy`.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from kb.version import __version__

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.answering.citations import Citation
    from kb.answering.conversation import Turn
    from kb.config import Settings
    from kb.doctor import DoctorReport
    from kb.documents import Hit
    from kb.errors import (
        AllProvidersFailed,
        ConfigError,
        Conflict,
        DocumentNotFound,
        EmptyKb,
        Forbidden,
        IngestError,
        InputError,
        JobNotFound,
        KbError,
        KbNotFound,
        LockTimeout,
        NoMatchingDocuments,
        NotFound,
        ProviderError,
        StoreError,
        WebhookError,
    )
    from kb.ingest.pipeline import IngestReport
    from kb.ingest.planning import IngestPlan
    from kb.jobs.store import Job
    from kb.knowledge_base import KnowledgeBase
    from kb.library import Library
    from kb.options import IngestScope, JobState, SearchFilter, SearchMode, SearchOptions
    from kb.results import DocumentInfo, KbInfo, KbSummary

# Where each public name lives: imported on first use, so `import kb` (and `kb --help`) stays
# light; type checkers read the imports above.
_HOMES = {
    "Answer": "kb.answering.answer",
    "Citation": "kb.answering.citations",
    "Turn": "kb.answering.conversation",
    "Settings": "kb.config",
    "DoctorReport": "kb.doctor",
    "Hit": "kb.documents",
    "IngestReport": "kb.ingest.pipeline",
    "IngestPlan": "kb.ingest.planning",
    "Job": "kb.jobs.store",
    "KnowledgeBase": "kb.knowledge_base",
    "Library": "kb.library",
    "IngestScope": "kb.options",
    "JobState": "kb.options",
    "SearchFilter": "kb.options",
    "SearchMode": "kb.options",
    "SearchOptions": "kb.options",
    "DocumentInfo": "kb.results",
    "KbInfo": "kb.results",
    "KbSummary": "kb.results",
}
_ERRORS = {
    "AllProvidersFailed", "ConfigError", "Conflict", "DocumentNotFound", "EmptyKb", "Forbidden", "IngestError",
    "InputError", "JobNotFound", "KbError", "KbNotFound", "LockTimeout", "NoMatchingDocuments", "NotFound",
    "ProviderError", "StoreError", "WebhookError",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = "kb.errors" if name in _ERRORS else _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'kb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def settings(name: str | None = None, home: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """The effective settings of knowledge base `name` under `home` (default: $KB_HOME, or
    the platform's data folder): config.toml, then KB_* variables, then `overrides`
    (setting names: model, top_k, search_mode...)."""
    from kb.config import load_settings

    return load_settings(kb=name, home=None if home is None else os.path.expanduser(os.fspath(home)), **overrides)


def open(name: str | None = None, home: str | os.PathLike[str] | None = None, **overrides: Any) -> KnowledgeBase:
    """Knowledge base `name` (default: "default", or $KB_NAME), as a context manager that
    closes it. Opening creates nothing; the first ingest does."""
    from kb.knowledge_base import KnowledgeBase

    return KnowledgeBase(settings(name, home, **overrides))


def library(home: str | os.PathLike[str] | None = None, **overrides: Any) -> Library:
    """Every knowledge base of `home`, for a long-lived process: one shared cache, metrics
    and encoders, one KnowledgeBase per name (`library.kb(name)`), the catalogue and jobs."""
    from kb.library import Library

    return Library(settings(None, home, **overrides))


__all__ = [
    "AllProvidersFailed",
    "Answer",
    "Citation",
    "ConfigError",
    "Conflict",
    "DoctorReport",
    "DocumentInfo",
    "DocumentNotFound",
    "EmptyKb",
    "Forbidden",
    "Hit",
    "IngestError",
    "IngestPlan",
    "IngestReport",
    "IngestScope",
    "InputError",
    "Job",
    "JobNotFound",
    "JobState",
    "KbError",
    "KbInfo",
    "KbNotFound",
    "KbSummary",
    "KnowledgeBase",
    "Library",
    "LockTimeout",
    "NoMatchingDocuments",
    "NotFound",
    "ProviderError",
    "SearchFilter",
    "SearchMode",
    "SearchOptions",
    "Settings",
    "StoreError",
    "Turn",
    "WebhookError",
    "__version__",
    "library",
    "open",
    "settings",
]
