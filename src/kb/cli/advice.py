"""kb's errors as the CLI says them: the message, then what to type to fix it, and the exit
code. The core's errors carry the remedy as data (kb.errors); the words are ours."""

from __future__ import annotations

from kb.errors import ConfigError, Conflict, Forbidden, InputError, KbError, NotFound, WebhookError

# Exit codes: 1 for a failure of the operation, 2 for a usage or configuration error.
_USAGE = (ConfigError, InputError, NotFound, Forbidden, WebhookError, Conflict)


def exit_code(exc: KbError) -> int:
    return 2 if isinstance(exc, _USAGE) else 1


# Each remedy as a command to type; {flag} is `--kb NAME ` for a knowledge base other than the default.
WORDING = {
    "create_kb": "create it with `kb --kb {kb} ingest PATH`, or pick one with --kb",
    "add_documents": "add documents with `kb {flag}ingest PATH`",
    "list_documents": "`kb {flag}list` shows what is",
    "list_jobs": "`kb jobs --all` lists the jobs",
    "list_tokens": "`kb tokens list` shows them",
    "repair": "run `kb {flag}doctor --repair` to rebuild it",
    "diagnose": "run `kb {flag}doctor`",
    "model_changed": "set the embedder back (model, or [embedding] in config.toml), or use another knowledge base with --kb NAME",
    "write_once": "run any kb command that writes (e.g. `kb ingest`) once with write access to it",
    "providers": "check the [[providers]] entries in config.toml or run `kb stats`",
}


def message(exc: KbError) -> str:
    """The error as one line: what is wrong, then what to do."""
    kb = exc.details.get("kb")
    text = exc.explained(WORDING, flag=f"--kb {kb} " if kb and kb != "default" else "")
    field = exc.details.get("field") if isinstance(exc, InputError) else None
    return f"--{field.replace('_', '-')} {text}" if field else text
