"""Output handling: keep citations that point at passages the model was given.

Only bracketed numbers in citation position are citations: one or two digits (kb numbers
at most 50 passages), not glued to a word (`arr[0]`), not a Markdown link (`[1](url)`),
and outside code spans and code blocks. Everything else the model wrote is left exactly
as it is; where a citation is removed, only the space before it goes with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kb.documents import Hit

_CITATION = re.compile(r"(?P<space>[ \t]*)(?<![\w\[])\[(?P<numbers>\d{1,2}(?:[ \t]*,[ \t]*\d{1,2})*)\](?![(\w])")
# Fenced blocks (to their closing fence, or to the end if unclosed), then inline code spans.
_CODE = re.compile(r"(?ms)^[ \t]*(```|~~~).*?(?:^[ \t]*\1[^\n]*$|\Z)|(`+)[^\n]*?\2")


@dataclass
class Citation:
    """Passage `n` of the answer's sources, which the answer cites as [n]."""

    n: int
    hit: Hit

    @property
    def source(self) -> str:
        return self.hit.source

    @property
    def chunk_id(self) -> str:
        return self.hit.chunk_id

    @property
    def text(self) -> str:
        return self.hit.text

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "source": self.hit.source,
            "chunk_id": self.hit.chunk_id,
            "page": self.hit.page,
            "lines": self.hit.lines,
            "locator": self.hit.locator,
            "text": self.hit.text,
        }


def verify(text: str, passages: list[Hit], given: int) -> tuple[str, list[Citation], list[int]]:
    """(answer with invalid citations removed, citations in order of number, dropped numbers)."""
    cited: set[int] = set()
    dropped: list[int] = []

    def check(match: re.Match[str]) -> str:
        numbers = [int(x) for x in match.group("numbers").split(",")]
        good = [n for n in numbers if 1 <= n <= given]
        dropped.extend(n for n in numbers if n not in good)
        cited.update(good)
        if good:
            return match.group("space") + "".join(f"[{n}]" for n in good)
        return ""  # with the space before it; what follows is never a word (see _CITATION)

    out, last = [], 0
    for code in _CODE.finditer(text):
        out.append(_CITATION.sub(check, text[last : code.start()]))
        out.append(code.group(0))
        last = code.end()
    out.append(_CITATION.sub(check, text[last:]))
    return "".join(out), [Citation(n, passages[n - 1]) for n in sorted(cited)], sorted(set(dropped))
