"""Turning a user's query into an FTS5 MATCH expression that cannot fail.

FTS5's query language gives meaning to quotes, `*`, `^`, `:`, `-`, parentheses and the
words AND, OR, NOT and NEAR; a query passed through raw fails or means something else.
Only word tokens are kept (letters and digits, any script), each quoted as a string, and
OR'ed: bm25 ranks chunks holding more (and rarer) terms first. FTS5 tokenizes each quoted
term with the index's own tokenizer, so Porter stemming applies to the query as to the text.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable

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


def match_expression(query: str | list[str]) -> str | None:
    """The FTS5 MATCH expression for `query` (or for words already chosen), or None when
    there is no word to look for."""
    words = terms(query) if isinstance(query, str) else query
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in words)  # a token holds no quote, so none to escape


# FTS5 ranks an OR query by scoring every chunk that holds any of its words before it can
# sort: ~1 µs per posting on the reference machine. Hybrid search keeps that within
# POSTINGS_BUDGET by ranking with the query's rarest words only, the ones that find what the
# embeddings miss (a code, a name). Its candidates, those chunks and the dense list's, are
# then scored by bm25 over the query's words up to RESCORE_BUDGET: FTS5 walks those words'
# postings (~0.15 µs each) but computes bm25 for the candidates only
# (Manifest.keyword_rescore). With the rarest words alone the keyword side of SciFact's
# train claims held 57% of their words and cost hybrid search 0.012 nDCG@10; ranking with
# every word costs ~5 ms more per claim on its 12,098 chunks, rescoring ~1.3 ms for as good
# a ranking (docs/quality.md, "Hybrid search on SciFact").
POSTINGS_BUDGET = 1000
RESCORE_BUDGET = 5_000


class RareTerms:
    """Chooses the words of a hybrid query's keyword side: the rarest first, while their
    document frequencies add up to at most a budget (`budget` to rank with, `rescore_budget`
    to rescore with). Frequencies are counted up to just over the larger budget (a bounded
    read of the word's postings) and cached until the knowledge base changes; common words
    recur across queries, so their counts come from the cache."""

    def __init__(
        self,
        count: Callable[[str, int], int],
        budget: int = POSTINGS_BUDGET,
        rescore_budget: int = RESCORE_BUDGET,
        size: int = 50_000,
    ) -> None:
        self._count = count  # (word, cap) -> documents holding the word, at most cap
        self.budget = budget
        self.rescore_budget = rescore_budget
        self._size = size
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._version: str | None = None
        self._lock = threading.Lock()

    def choose(self, words: list[str], version: str, budget: int | None = None) -> list[str]:
        """The rarest of `words` within `budget` postings (default: `self.budget`), rarest
        first; `version` is the knowledge base's content key."""
        budget = self.budget if budget is None else budget
        cap = max(self.budget, self.rescore_budget) + 1
        with self._lock:
            if version != self._version:
                self._cache.clear()
                self._version = version
            known = {w: self._cache.get(w) for w in words}
        for word, df in known.items():
            if df is None:
                known[word] = self._count(word, cap)
        with self._lock:
            for word, df in known.items():
                self._cache[word] = df  # type: ignore[assignment]
                self._cache.move_to_end(word)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        keep, total = [], 0
        for word, df in sorted(known.items(), key=lambda pair: pair[1] or 0):
            if not df:
                continue  # in no chunk: nothing to score
            if total + df > budget:
                break
            keep.append(word)
            total += df
        return keep
