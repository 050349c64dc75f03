"""Output handling: keep citations that point at passages the model was given."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb.documents import Hit

_GROUP = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass
class Citation:
    n: int
    hit: Hit

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "source": self.hit.source,
            "chunk_id": self.hit.chunk_id,
            "page": self.hit.page,
            "lines": self.hit.lines,
            "text": self.hit.text,
        }


def verify(text: str, passages: list[Hit], given: int) -> tuple[str, list[Citation], list[int]]:
    """(answer with invalid markers removed, citations in order of number, dropped numbers)."""
    cited: set[int] = set()
    dropped: list[int] = []

    def keep(match: re.Match) -> str:
        numbers = [int(x) for x in match.group(1).split(",")]
        good = [n for n in numbers if 1 <= n <= given]
        dropped.extend(n for n in numbers if n not in good)
        cited.update(good)
        return "".join(f"[{n}]" for n in good)

    cleaned = _GROUP.sub(keep, text)
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", cleaned)
    return cleaned, [Citation(n, passages[n - 1]) for n in sorted(cited)], sorted(set(dropped))
