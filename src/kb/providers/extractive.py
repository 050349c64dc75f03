"""The no-LLM answerer: the passages' most relevant sentences, each with its citation.

A sentence's score is its embedding similarity to the question plus a bonus for the
question's content words it contains. It needs no network and no configuration, which
is why it is always the last link of the chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kb.providers.base import Completion, CompletionRequest, Usage

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_WORD = re.compile(r"\w+")
_STOP = set(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "how",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "i",
        "you",
        "he",
        "she",
        "it",
        "we",
        "they",
        "my",
        "your",
        "this",
        "that",
        "these",
        "those",
        "there",
        "with",
        "from",
        "by",
        "as",
        "about",
        "into",
        "than",
        "then",
        "so",
        "if",
        "not",
        "no",
        "yes",
        "any",
        "some",
        "many",
        "much",
    ]
)
MAX_SENTENCES = 3
NO_ANSWER_SCORE = 0.30


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


class ExtractiveProvider:
    model = "extractive"

    def __init__(self, name: str, embed: Callable[[list[str]], Any]) -> None:
        self.name = name
        self._embed = embed

    def complete(self, request: CompletionRequest) -> Completion:
        candidates: list[tuple[int, str]] = []
        for n, hit in enumerate(request.passages, start=1):
            for sentence in _SENTENCES.split(hit.text):
                sentence = " ".join(sentence.split())
                if len(sentence) >= 20:
                    candidates.append((n, sentence))
        given = len(request.passages)
        if not candidates:
            return self._done("The documents do not cover this question.", given)
        vectors = self._embed([request.question] + [s for _, s in candidates])
        q_terms = _terms(request.question)
        scored = []
        for (n, sentence), vector in zip(candidates, vectors[1:]):
            overlap = len(q_terms & _terms(sentence)) / len(q_terms) if q_terms else 0.0
            scored.append((float(vector @ vectors[0]) + 0.3 * overlap, n, sentence))
        scored.sort(key=lambda item: item[0], reverse=True)
        if scored[0][0] < NO_ANSWER_SCORE:
            return self._done(
                f"The documents do not clearly cover this. The closest passage says: {scored[0][2]} [{scored[0][1]}]",
                given,
            )
        best = [s for s in scored[:MAX_SENTENCES] if s[0] >= scored[0][0] * 0.75]
        text = " ".join(f"{sentence} [{n}]" for _, n, sentence in best)
        return self._done(text, given)

    def _done(self, text: str, given: int) -> Completion:
        return Completion(text=text, provider=self.name, model=self.model, usage=Usage(0, 0, 0.0), passages_given=given)
