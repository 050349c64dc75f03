"""All terminal output: rich tables, progress, Markdown on a TTY; JSON/NDJSON otherwise.

Machine output goes to stdout as plain JSON lines; messages and progress go to stderr,
and colour and progress appear only when the stream is a terminal. One module per view:
ingest, answers (search hits and answers), catalogue (documents, knowledge bases, info,
doctor), stats, jobs, evaluation.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)  # lines are not cut at 80 columns in a pipe
err = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def emit_ndjson(values: Iterable[Any]) -> None:
    """One JSON object per line, from values that have `to_json()`."""
    for value in values:
        emit_json(value.to_json())


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[str] = ()) -> None:
    """A plain table on stdout; `right` names the columns aligned right (numbers)."""
    from rich.table import Table

    shown = Table()
    for col in columns:
        shown.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        shown.add_row(*row)
    out.print(shown)


def error(message: str) -> None:
    err.print(
        f"[bold red]error:[/] {message}" if err.is_terminal else f"error: {message}",
        markup=err.is_terminal,
        soft_wrap=True,
    )


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}" if err.is_terminal else f"warning: {message}", markup=err.is_terminal,
              soft_wrap=True, highlight=False)  # fmt: skip


def note(message: str) -> None:
    err.print(f"[dim]{message}[/]" if err.is_terminal else message, markup=err.is_terminal, soft_wrap=True)


def short(path: str) -> str:
    """A path relative to the current folder when it lies under it."""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def fmt(value: Any) -> str:
    return "–" if value is None else str(value)


def pretty_json(obj: Any) -> None:
    if out.is_terminal:
        out.print_json(data=obj)
    else:
        emit_json(obj)
