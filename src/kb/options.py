"""The option sets that travel from a front-end down to the pipelines, one value each.

A CLI flag, an HTTP JSON field or an MCP argument becomes an `IngestScope` or a
`SearchOptions` at the edge; the core, the job record (stored typed) and the pipelines take
that value as it is, so no option list is spelled out twice. Search modes and job states are
defined here and nowhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class SearchOptions:
    """How passages are chosen, for a search and for the passages an answer is written from.
    None means the knowledge base's setting (top_k, search_mode, unique_sources)."""

    k: int | None = None
    mode: SearchMode | None = None
    unique_sources: bool | None = None

    def merged(self, **overrides: Any) -> SearchOptions:
        """These options with every override that is not None."""
        given = {name: value for name, value in overrides.items() if value is not None}
        if "mode" in given:
            given["mode"] = search_mode(given["mode"])
        return replace(self, **given)

    def resolved(self, top_k: int, mode: str, unique_sources: bool) -> ResolvedSearch:
        """Every option decided, from these and the given defaults."""
        return ResolvedSearch(
            self.k or top_k,
            self.mode or search_mode(mode),
            unique_sources if self.unique_sources is None else self.unique_sources,
        )


@dataclass(frozen=True)
class ResolvedSearch:
    k: int
    mode: SearchMode
    unique_sources: bool
