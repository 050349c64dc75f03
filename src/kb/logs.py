"""Third-party libraries speak through kb, never straight to the user's terminal.

pypdf, chromadb, transformers and friends report through the standard `logging` and
`warnings` modules. With no handler configured, Python's last-resort handler prints their
warnings raw on stderr (pypdf alone prints dozens of "Multiple definitions in dictionary"
lines for some PDFs). kb installs one root handler that routes every record:

- while a file is being read (`capture()`, on that thread), into that file's quality
  warnings, so the ingest report and `kb doctor` show them per file;
- otherwise to stderr only with `--debug` (`configure(debug=True)`), else nowhere.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()
_lock = threading.Lock()
_state = {"installed": False, "debug": False}


class _Router(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        collected = getattr(_local, "records", None)
        if collected is not None:
            collected.append(record)
        elif _state["debug"]:
            with contextlib.suppress(Exception):  # a closed stderr must never break kb
                sys.stderr.write(f"{record.name}: {record.levelname.lower()}: {record.getMessage()}\n")


def _install() -> None:
    with _lock:
        if _state["installed"]:
            return
        root = logging.getLogger()
        root.addHandler(_Router())
        root.setLevel(logging.WARNING)
        logging.captureWarnings(True)  # warnings.warn(...) → the 'py.warnings' logger → the router
        _state["installed"] = True


def configure(debug: bool = False) -> None:
    """Called once by a front-end at start-up; `debug` shows library output on stderr."""
    _install()
    _state["debug"] = debug
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


@contextmanager
def capture() -> Iterator[list[logging.LogRecord]]:
    """Collects what libraries log or warn on this thread for the duration."""
    _install()
    previous = getattr(_local, "records", None)
    records: list[logging.LogRecord] = []
    _local.records = records
    try:
        yield records
    finally:
        _local.records = previous


def summarise(records: list[logging.LogRecord], shown: int = 3) -> list[str]:
    """One quality warning per library: how many messages, and the first few distinct ones."""
    by_library: dict[str, list[str]] = {}
    for record in records:
        if record.levelno < logging.WARNING:
            continue
        library = "python" if record.name == "py.warnings" else record.name.split(".")[0]
        by_library.setdefault(library, []).append(" ".join(record.getMessage().split())[:200])
    out = []
    for library, messages in by_library.items():
        distinct = list(dict.fromkeys(messages))
        more = f"; and {len(distinct) - shown} more" if len(distinct) > shown else ""
        count = f"{len(messages)} messages" if len(messages) > 1 else "1 message"
        out.append(f"{library} reported {count}: {'; '.join(distinct[:shown])}{more}")
    return out
