"""Library exceptions become IngestError at the reader, so no vendor type (or traceback)
ever reaches the pipeline or the user for a bad file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kb.errors import IngestError

_MAX_DETAIL = 200  # some libraries put a whole XML fragment in their message


@contextmanager
def translated(kind: str) -> Iterator[None]:
    """Turns anything a parser raises inside the block into IngestError("unreadable KIND (…)")."""
    try:
        yield
    except IngestError:
        raise
    except Exception as exc:  # parsers raise dozens of internal types on damaged files
        raise IngestError(f"unreadable {kind} ({describe(exc)})") from exc


def describe(exc: BaseException) -> str:
    detail = " ".join(str(exc).split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "…"
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
