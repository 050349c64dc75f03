"""Which document of the KB a corpus id in an evaluation file names.

A corpus id is a file's name without its extension (`bee_biology`), or its path relative
to the folder that was ingested (`notes/bee_biology.md`, with or without the extension).
The KB stores absolute paths and not the folder that was ingested, so every trailing part
of a path is a candidate; an id that fits several documents is refused, because scoring
it would be a guess.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from kb.errors import InputError


def _normal(corpus_id: str) -> str:
    return corpus_id.strip().replace("\\", "/").removeprefix("./")


def _keys(source: str) -> set[str]:
    parts = PurePosixPath(source.replace("\\", "/")).parts
    keys = set()
    for start in range(len(parts) - 1, 0, -1):
        tail = PurePosixPath(*parts[start:])
        keys.update({str(tail), str(tail.with_suffix("")) if tail.suffix else str(tail)})
    return keys


class CorpusIds:
    def __init__(self, sources: list[str]) -> None:
        self._by_key: dict[str, list[str]] = {}
        for source in sources:
            for key in _keys(source):
                self._by_key.setdefault(key, []).append(source)
        self._shown: dict[str, str] = {}  # source → the id the evaluation files use for it

    def source(self, corpus_id: str) -> str | None:
        """The document `corpus_id` names, or None if it names none."""
        found = self._by_key.get(_normal(corpus_id), [])
        if len(found) > 1:
            raise InputError(
                f"corpus id {corpus_id!r} fits {len(found)} documents ({', '.join(sorted(found)[:3])}); "
                "use the path relative to the ingested folder"
            )
        if found:
            self._shown.setdefault(found[0], corpus_id)
            return found[0]
        return None

    def id_for(self, source: str) -> str:
        """The corpus id of a document: as the evaluation files named it, else its file name
        without extension."""
        return self._shown.get(source) or PurePosixPath(source.replace("\\", "/")).stem
