"""Input handling for questions and search queries."""

from __future__ import annotations

import unicodedata

from kb.errors import InputError


def clean_question(raw: str, max_chars: int) -> str:
    """The question, normalised (NFC, single spaces), or InputError saying what to fix."""
    if "\x00" in raw or sum(1 for c in raw if unicodedata.category(c) == "Cc" and c not in "\t\n\r") > 2:
        raise InputError("the question contains binary data; pass plain text")
    text = " ".join(unicodedata.normalize("NFC", raw).split())
    if not text:
        raise InputError('the question is empty; try kb ask "How do I ...?"')
    if len(text) > max_chars:
        raise InputError(
            f"the question is {len(text)} characters long; the limit is {max_chars} (setting max_question_chars)"
        )
    return text


def cache_form(question: str) -> str:
    """Questions that differ only in case, spacing or a trailing '?' share a cache entry."""
    return question.casefold().rstrip(" ?!.")
