"""Word-piece counting with the model's own tokenizer (tokenizers only: no torch)."""

from __future__ import annotations

from pathlib import Path


class WordPieces:
    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Cut `text` into consecutive spans of at most `max_tokens` word pieces."""
        offsets = self._tok.encode(text, add_special_tokens=False).offsets
        parts = []
        for i in range(0, len(offsets), max_tokens):
            window = offsets[i : i + max_tokens]
            end = offsets[i + max_tokens][0] if i + max_tokens < len(offsets) else len(text)
            parts.append(text[window[0][0] : end].strip())
        return [p for p in parts if p]
