"""Turning a user's query into an FTS5 MATCH expression that cannot fail.

FTS5's query language gives meaning to quotes, `*`, `^`, `:`, `-`, parentheses and the
words AND, OR, NOT and NEAR; a query passed through raw fails or means something else.
Only word tokens are kept (letters and digits, any script), each quoted as a string, and
OR'ed: bm25 ranks chunks holding more (and rarer) terms first. FTS5 tokenizes each quoted
term with the index's own tokenizer, so Porter stemming applies to the query as to the text.
"""

from __future__ import annotations

import re

# Letters and digits; `_` separates, as it does for FTS5's unicode61 tokenizer.
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 32  # bounds the cost of one query; a 2,000-character question has more words

# Words so common that they match most chunks: they add little to bm25 (low idf) but make
# FTS5 score every chunk that holds them. Dropped unless the query has nothing else.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def terms(query: str) -> list[str]:
    """The distinct word tokens of `query`, lower-cased, stopwords dropped when others remain."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
    words = list(seen)
    content = [w for w in words if w not in STOPWORDS]
    return (content or words)[:MAX_TERMS]


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH expression for `query`, or None when it has no word to look for."""
    words = terms(query)
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in words)  # a token holds no quote, so none to escape
