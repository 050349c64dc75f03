"""Input handling for questions and search queries."""

from __future__ import annotations

import unicodedata

from kb.errors import InputError


def text_problem(value: str) -> str | None:
    """What makes `value` unusable as text, or None: a lone surrogate (half of a UTF-16 pair,
    which JSON's \\ud800 escapes and undecodable file names produce) cannot be encoded as UTF-8."""
    for i, c in enumerate(value):
        if 0xD800 <= ord(c) <= 0xDFFF:
            return f"it holds a lone surrogate (\\u{ord(c):04x} at character {i}), which is not Unicode text"
    return None


def check_text(value: str, what: str, field: str | None = None) -> str:
    """`value`, or InputError naming `what` when it is not Unicode text."""
    problem = text_problem(value)
    if problem is not None:
        message = f"{what} is not valid text: {problem}; send UTF-8"
        raise InputError(message, field=field) if field else InputError(message)
    return value


def clean_question(raw: str, max_chars: int) -> str:
    """The question, normalised (NFC, single spaces), or InputError saying what to fix."""
    check_text(raw, "the question")
    if "\x00" in raw or sum(1 for c in raw if unicodedata.category(c) == "Cc" and c not in "\t\n\r") > 2:
        raise InputError("the question contains binary data; pass plain text")
    text = " ".join(unicodedata.normalize("NFC", raw).split())
    if not text:
        raise InputError("the question is empty; ask something")
    if len(text) > max_chars:
        raise InputError(
            f"the question is {len(text)} characters long; the limit is {max_chars} (setting max_question_chars)"
        )
    return text


def cache_form(question: str) -> str:
    """Questions that differ only in case, spacing or a trailing '?' share a cache entry."""
    return question.casefold().rstrip(" ?!.")
