"""kb's errors as the CLI says them: the message, then what to type to fix it, and the exit
code. The core's errors carry the remedy as data (kb.errors); the words are ours."""

from __future__ import annotations

from kb.errors import ConfigError, Forbidden, InputError, KbError, NotFound, WebhookError

# Exit codes: 1 for a failure of the operation, 2 for a usage or configuration error.
_USAGE = (ConfigError, InputError, NotFound, Forbidden, WebhookError)


def exit_code(exc: KbError) -> int:
    return 2 if isinstance(exc, _USAGE) else 1


def _kb_flag(details: dict) -> str:
    kb = details.get("kb")
    return f"--kb {kb} " if kb and kb != "default" else ""


def _remedy(exc: KbError) -> str | None:
    d = exc.details
    flag = _kb_flag(d)
    match exc.remedy:
        case "create_kb":
            return f"create it with `kb --kb {d.get('kb')} ingest PATH`, or pick one with --kb"
        case "add_documents":
            return f"add documents with `kb {flag}ingest PATH`"
        case "list_documents":
            return f"`kb {flag}list` shows what is"
        case "list_jobs":
            return "`kb jobs --all` lists the jobs"
        case "repair":
            return f"run `kb {flag}doctor --repair` to rebuild it"
        case "diagnose":
            return f"run `kb {flag}doctor`"
        case "model_changed":
            return "set KB_MODEL back, or use another knowledge base with --kb NAME"
        case "write_once":
            return "run any kb command that writes (e.g. `kb ingest`) once with write access to it"
        case "providers":
            return "check the [[providers]] entries in config.toml or run `kb stats`"
    return None


def message(exc: KbError) -> str:
    """The error as one line: what is wrong, then what to do."""
    text = str(exc)
    field = exc.details.get("field") if isinstance(exc, InputError) else None
    if field:
        text = f"--{field.replace('_', '-')} {text}"
    remedy = _remedy(exc)
    return f"{text}; {remedy}" if remedy else text
