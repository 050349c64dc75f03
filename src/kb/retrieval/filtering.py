"""Search filters: which documents a search may return, decided before the candidates are
searched, so that each candidate list (dense, keyword) is the best of those documents.

A `SearchFilter` (kb.options) selects documents by path, type and modification time. All
three come from the manifest's file records (source path, mtime_ns; the type is the path's
suffix), which every knowledge base has had from its first ingest: a KB built before filters
existed is filtered as it is, with nothing to re-embed or migrate. The documents it leaves
become a `Scope`: their sources, which restrict the keyword side's FTS5 query, and their
chunk ids, which restrict the vector store's nearest-neighbour search.

Path globs: `*` and `?` match any characters, `/` included, and `[...]` a set (`[!...]` its
complement), as fnmatch does; they are matched by SQLite's GLOB, which has those rules. A glob
starting with `/` (or `~`, expanded) is matched against the whole path, and also selects
everything under it as a folder (`/srv/docs`); any other glob is matched against the end of
the path, whole names only: `*.md`, `varroa_mites.html`, `manuals/*.pdf`, `manuals` (a folder
of that name, anywhere). Globs are case-sensitive, as the file system is; types are not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kb.errors import NoMatchingDocuments

if TYPE_CHECKING:
    from kb.ingest.manifest import Manifest
    from kb.options import SearchFilter


@dataclass(frozen=True)
class Scope:
    """The documents a filter leaves, and their chunks."""

    sources: tuple[str, ...]
    chunk_ids: tuple[str, ...]


def sql_globs(globs: tuple[str, ...]) -> list[str]:
    """The SQLite GLOB patterns that select a document path any of `globs` selects."""
    out: list[str] = []
    for glob in globs:
        glob = os.path.expanduser(glob).replace("[!", "[^")  # fnmatch's complement, in GLOB's spelling
        if glob.startswith("/"):
            out += [glob, glob.rstrip("/") + "/*"]
        else:
            glob = glob.removeprefix("./").rstrip("/")
            out += ["*/" + glob, "*/" + glob + "/*"]
    return out


def scope_of(manifest: Manifest, search_filter: SearchFilter, kb: str) -> Scope | None:
    """The scope of a search under `search_filter`: None when the filter is empty or leaves
    every document (nothing to restrict); NoMatchingDocuments when it leaves none."""
    if not search_filter:
        return None
    since_ns = None if search_filter.since is None else _clamped(int(search_filter.since * 1_000_000_000))
    matched, total, sources = manifest.files_matching(sql_globs(search_filter.sources), search_filter.types, since_ns)
    if matched == 0:
        raise NoMatchingDocuments(
            f"no document of knowledge base {kb!r} matches the filter ({search_filter.describe()})",
            remedy="list_documents", kb=kb, filter=search_filter.to_json(),
        )  # fmt: skip
    if matched == total:
        return None
    return Scope(tuple(sources), tuple(manifest.chunk_ids_of(sources)))


def _clamped(ns: int) -> int:
    """Within SQLite's integers: a date past 2262 leaves nothing, one before 1677 everything."""
    return max(-(2**63), min(ns, 2**63 - 1))
