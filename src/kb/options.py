"""The option sets that travel from a front-end down to the pipelines, one value each.

A CLI flag, an HTTP JSON field or an MCP argument becomes an `IngestScope` or a
`SearchOptions` at the edge; the core, the job record (stored typed) and the pipelines take
that value as it is, so no option list is spelled out twice. Search modes and job states are
defined here and nowhere else.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from kb.errors import InputError

SearchMode = Literal["hybrid", "dense", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)

JobState = Literal["queued", "running", "done", "failed"]
JOB_STATES: tuple[JobState, ...] = get_args(JobState)

PathLike = str | os.PathLike[str]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_S = 9999 * 604800  # ~190 years: past any real lifetime, within what a date can hold


def duration_s(text: str, field: str) -> float:
    """Seconds in a duration such as 30m, 12h, 7d or 2w, or InputError naming `field`."""
    match = _DURATION.match(text.strip())
    if not match:
        raise InputError(f"{text!r} is not a duration; use e.g. 30m, 1h, 7d", field=field)
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds > MAX_DURATION_S:
        raise InputError(f"{text!r} is longer than 9999 weeks; use a shorter duration", field=field)
    return seconds


def search_mode(value: str) -> SearchMode:
    """`value` as a search mode, or InputError naming the modes."""
    mode = value.strip().lower()
    for known in SEARCH_MODES:
        if mode == known:
            return known
    raise InputError(f"{value!r} is not a search mode; use one of {', '.join(SEARCH_MODES)}", field="mode")


def job_state(value: str) -> JobState:
    """`value` as a job state, or InputError naming the states."""
    for known in JOB_STATES:
        if value == known:
            return known
    raise InputError(f"{value!r} is not a job state; use one of {', '.join(JOB_STATES)}", field="state")


@dataclass(frozen=True)
class IngestScope:
    """What an ingest reads: files and folders (folders recursively), narrowed by globs and
    the hidden-file rule. Filters narrow what is read, never what is kept; with `prune`,
    documents under the given folders that the filters leave out are removed too."""

    paths: tuple[Path, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hidden: bool = False
    prune: bool = False

    @classmethod
    def of(
        cls,
        paths: Iterable[PathLike],
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        hidden: bool = False,
        prune: bool = False,
    ) -> IngestScope:
        return cls(tuple(Path(p) for p in paths), tuple(include), tuple(exclude), hidden, prune)

    def absolute(self) -> IngestScope:
        """The same scope with absolute paths (a job runs in another process, elsewhere)."""
        return replace(self, paths=tuple(Path(os.path.abspath(p.expanduser())) for p in self.paths))

    def to_json(self) -> dict[str, Any]:
        return {
            "paths": [str(p) for p in self.paths],
            "include": list(self.include),
            "exclude": list(self.exclude),
            "hidden": self.hidden,
            "prune": self.prune,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IngestScope:
        return cls.of(data["paths"], data.get("include") or (), data.get("exclude") or (),
                      bool(data.get("hidden")), bool(data.get("prune")))  # fmt: skip


def scope_of(paths: IngestScope | Sequence[PathLike]) -> IngestScope:
    return paths if isinstance(paths, IngestScope) else IngestScope.of(paths)


_TYPE = re.compile(r"^[a-z0-9][a-z0-9_+-]{0,15}$")
MAX_FILTER_ITEMS = 100


def _since(value: str | float | datetime | None) -> float | None:
    """Seconds since the epoch from a date (2025-01-31: midnight, local time), a date and
    time in ISO 8601 (a zone honoured, local time without one), a duration back from now
    (7d, 12h), or a number of seconds since the epoch; InputError naming `since` otherwise."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if isinstance(value, datetime):
            seconds = value.timestamp()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif _DURATION.match(text):
            seconds = time.time() - duration_s(text, "since")
        else:
            seconds = datetime.fromisoformat(text).timestamp()
        datetime.fromtimestamp(seconds, UTC)  # a time kb can write back (to_json): years 1 to 9999 in UTC
    except (ValueError, OverflowError, OSError):
        raise InputError(
            f"{text!r} is not a date; use e.g. 2025-01-31, 2025-01-31T08:00:00Z or a duration such as 7d", field="since"
        ) from None
    return seconds


def _types(values: Iterable[str]) -> tuple[str, ...]:
    """File types as suffixes without the dot, lower-cased: `md,pdf`, `.MD` and `md` alike."""
    out: dict[str, None] = {}
    for value in values:
        for part in str(value).split(","):
            kind = part.strip().lower().removeprefix(".")
            if not kind:
                continue
            if not _TYPE.match(kind):
                raise InputError(
                    f"{part.strip()!r} is not a file type; use suffixes such as md, pdf, txt", field="type"
                )
            out.setdefault(kind, None)
    return tuple(out)


@dataclass(frozen=True)
class SearchFilter:
    """Which documents a search may return: their path matches one of `sources` (globs), their
    suffix is one of `types`, and their file was modified at `since` (seconds since the
    epoch) or later. Empty parts do not filter. Applied inside each candidate search (see
    kb.retrieval.filtering), from the manifest's file records, so it needs nothing a
    knowledge base built before filters existed lacks."""

    sources: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    since: float | None = None

    @classmethod
    def of(
        cls,
        sources: Iterable[str] = (),
        types: Iterable[str] = (),
        since: str | float | datetime | None = None,
    ) -> SearchFilter:
        """A filter from what a user typed: globs, suffixes (also comma-separated) and a date."""
        globs = tuple(dict.fromkeys(s.strip() for s in sources if s and s.strip()))
        kinds = _types(types)
        for name, items in (("source", globs), ("type", kinds)):
            if len(items) > MAX_FILTER_ITEMS:
                raise InputError(f"{len(items)} {name} filters; at most {MAX_FILTER_ITEMS}", field=name)
        return cls(globs, kinds, _since(since))

    def __bool__(self) -> bool:
        return bool(self.sources or self.types or self.since is not None)

    def to_json(self) -> dict[str, Any]:
        since = None
        if self.since is not None:
            since = datetime.fromtimestamp(self.since, UTC).isoformat().replace("+00:00", "Z")
        return {"source": list(self.sources), "type": list(self.types), "since": since}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SearchFilter:
        """The filter of an HTTP body or MCP call: {"source": [...], "type": [...], "since": "..."}."""
        if not data:
            return cls()
        return cls.of(data.get("source") or (), data.get("type") or (), data.get("since"))

    def describe(self) -> str:
        """The filter in words, for messages: "source '*.md'; type pdf; modified since 2025-01-31"."""
        parts = []
        if self.sources:
            parts.append("source " + ", ".join(repr(s) for s in self.sources))
        if self.types:
            parts.append("type " + ", ".join(self.types))
        if self.since is not None:
            parts.append(f"modified since {self.to_json()['since']}")
        return "; ".join(parts) or "no filter"


@dataclass(frozen=True)
class SearchOptions:
    """How passages are chosen, for a search and for the passages an answer is written from.
    None means the knowledge base's setting (top_k, search_mode, unique_sources; `rerank`:
    whether a reranker is configured). `filter` narrows the documents searched."""

    k: int | None = None
    mode: SearchMode | None = None
    unique_sources: bool | None = None
    filter: SearchFilter = field(default_factory=SearchFilter)
    rerank: bool | None = None

    def merged(self, **overrides: Any) -> SearchOptions:
        """These options with every override that is not None."""
        given = {name: value for name, value in overrides.items() if value is not None}
        if "mode" in given:
            given["mode"] = search_mode(given["mode"])
        return replace(self, **given)

    def resolved(self, top_k: int, mode: str, unique_sources: bool, reranker: bool = False) -> ResolvedSearch:
        """Every option decided, from these and the given defaults (`reranker`: one is configured)."""
        return ResolvedSearch(
            self.k or top_k,
            self.mode or search_mode(mode),
            unique_sources if self.unique_sources is None else self.unique_sources,
            self.filter,
            reranker and self.rerank is not False,
        )


@dataclass(frozen=True)
class ResolvedSearch:
    k: int
    mode: SearchMode
    unique_sources: bool
    filter: SearchFilter = field(default_factory=SearchFilter)
    rerank: bool = False
