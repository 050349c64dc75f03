"""Word-piece counting with the model's own tokenizer (tokenizers only: no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class WordPieces:
    def __init__(self, model_dir: Path) -> None:
        self._path = model_dir / "tokenizer.json"
        self._loaded: Any = None

    @property
    def _tok(self):
        # Loaded on first use: a re-ingest with nothing to read never needs it.
        if self._loaded is None:
            from tokenizers import Tokenizer

            self._loaded = Tokenizer.from_file(str(self._path))
            self._loaded.no_truncation()
            self._loaded.no_padding()
        return self._loaded

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def _offsets(self, text: str, block: int = 50_000) -> list[tuple[int, int]]:
        """Token offsets, tokenizing long text in blocks cut at whitespace: the tokenizer
        is superlinear on huge single strings (12 MB: 9 s whole, 3.5 s in blocks), and BERT
        pre-tokenizes on whitespace, so the cuts change nothing."""
        offsets: list[tuple[int, int]] = []
        start = 0
        while start < len(text):
            end = len(text) if len(text) - start <= block else text.rfind(" ", start + block // 2, start + block)
            if end <= start:
                end = min(len(text), start + block)
            encoded = self._tok.encode(text[start:end], add_special_tokens=False).offsets
            offsets += [(a + start, b + start) for a, b in encoded]
            start = end
        return offsets

    def split(self, text: str, max_tokens: int) -> list[tuple[str, int]]:
        """Cut `text` into consecutive spans of at most `max_tokens` word pieces: (span, pieces)."""
        offsets = self._offsets(text)
        parts = []
        for i in range(0, len(offsets), max_tokens):
            window = offsets[i : i + max_tokens]
            end = offsets[i + max_tokens][0] if i + max_tokens < len(offsets) else len(text)
            parts.append((text[window[0][0] : end].strip(), len(window)))
        return [(p, n) for p, n in parts if p]
