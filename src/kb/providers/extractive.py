"""The no-LLM answerer: the one sentence of the passages that answers the question, cited.

Each sentence of the retrieved passages gets a relevance score that fuses two normalised
signals: its embedding similarity to the question (the KB's own query encoder, passed in
by the chain) and how much of the question's keyword weight it holds (stemmed terms, each
weighted by how rare it is among the candidate sentences, as in BM25's idf). The answer is
the relevant sentence that also holds the kind of words the question asks for (a date for
"when", a number for "how many", ...) and says more than the question itself. A second
sentence is added only where it completes the first. Below a relevance floor the answer
says the documents do not answer the question rather than quote the nearest noise.

It needs no network and no configuration, which is why it is always the last link of the
chain.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kb.providers.base import Completion, CompletionRequest, Usage
from kb.providers.sentences import (
    BACK_REFERENCE,
    Sentence,
    answer_kind,
    answer_strength,
    defines,
    split_sentences,
    terms,
    trim,
)

NOT_ANSWERED = "The documents do not answer this question."
MAX_WORDS = 40
MIN_WORDS = 3
MIN_SENTENCES = 20
# Relevance is COSINE_WEIGHT * cosine + the rest * keyword coverage, both in [0, 1].
# The weights and the floor were chosen on benchmarks/data/extractive_qa.jsonl with
# all-MiniLM-L6-v2 (docs/quality.md): there the best sentence of every answerable
# question scores 0.41 or more, and that of 7 of the 8 unanswerable ones 0.39 or less.
COSINE_WEIGHT = 0.4
RELEVANCE_FLOOR = 0.35
ANSWER_WORDS_BONUS = 0.15  # the sentence holds the kind of words the question asks for
DEFINITION_BONUS = 0.10
ECHO_PENALTY = 0.5  # a sentence with no content word the question lacks never answers it
PASSAGE_PRIOR = 0.04  # the retriever's order breaks near-ties: 0.04 for [1], 0.02 for [2], ...


class ExtractiveProvider:
    model = "extractive"

    def __init__(self, name: str, embed: Callable[[list[str]], Any]) -> None:
        self.name = name
        self._embed = embed

    def complete(self, request: CompletionRequest) -> Completion:
        given = len(request.passages)
        by_passage = [
            [Sentence(n, i, s) for i, s in enumerate(_pieces(hit.text))]
            for n, hit in enumerate(request.passages, start=1)
        ]
        # A title ("SWARMING AND SWARM CONTROL") names a subject; it never answers a question.
        candidates = [
            s for sentences in by_passage for s in sentences if _count(s.text) >= MIN_WORDS and not s.text.isupper()
        ]
        if not candidates:
            return self._done(NOT_ANSWERED, given)
        context = [_context(hit.heading, sentences) for hit, sentences in zip(request.passages, by_passage)]
        relevance = self._relevance(request.question, candidates, context)
        if max(relevance) < RELEVANCE_FLOOR:
            return self._done(NOT_ANSWERED, given)
        scores = _answer_scores(request.question, candidates, relevance)
        chosen = candidates[max(range(len(candidates)), key=lambda i: scores[i])]
        text = _complete(chosen, by_passage[chosen.passage - 1])
        return self._done(f"{text} [{chosen.passage}]", given)

    def _relevance(self, question: str, candidates: list[Sentence], context: list[_Context]) -> list[float]:
        vectors = self._embed([question] + [s.text for s in candidates])
        cosine = [max(0.0, float(v @ vectors[0])) for v in vectors[1:]]
        coverage = _keyword_coverage(question, candidates, context)
        return [COSINE_WEIGHT * c + (1 - COSINE_WEIGHT) * k for c, k in zip(cosine, coverage)]

    def _done(self, text: str, given: int) -> Completion:
        return Completion(text=text, provider=self.name, model=self.model, usage=Usage(0, 0, 0.0), passages_given=given)


@dataclass
class _Context:
    """What a sentence's passage says around it, as stemmed terms."""

    heading: set[str]
    sentences: list[set[str]]  # by index in the passage
    everything: set[str]


def _context(heading: str | None, sentences: list[Sentence]) -> _Context:
    bags = [set(terms(s.text)) for s in sentences]
    return _Context(set(terms(heading or "")), bags, set().union(*bags))


def _keyword_coverage(question: str, candidates: list[Sentence], context: list[_Context]) -> list[float]:
    """The share of the question's idf weight each sentence holds. A question term no
    sentence holds weighs most, so a question about something absent scores low
    everywhere. A term the sentence lacks counts half when the passage's heading holds it,
    or the sentence before when this one refers back to it ("They develop from ..."), and a
    quarter when only the rest of its passage does."""
    q_terms = set(terms(question))
    if not q_terms:
        return [0.0] * len(candidates)
    bags = [set(terms(s.text)) for s in candidates]
    # Counted as if at least MIN_SENTENCES were seen: in a passage of two sentences every
    # word it holds would otherwise look common next to the one it lacks.
    n = max(len(bags), MIN_SENTENCES)
    idf = {t: math.log(1 + (n + 0.5) / (sum(t in bag for bag in bags) + 0.5)) for t in q_terms}
    total = sum(idf.values())
    out = []
    for s, bag in zip(candidates, bags):
        around = context[s.passage - 1]
        near = around.heading
        if BACK_REFERENCE.match(s.text) and s.index > 0:
            near = near | around.sentences[s.index - 1]
        held = sum(
            w if t in bag else 0.5 * w if t in near else 0.25 * w if t in around.everything else 0.0
            for t, w in idf.items()
        )
        out.append(held / total)
    return out


def _answer_scores(question: str, candidates: list[Sentence], relevance: list[float]) -> list[float]:
    """Relevance, plus a bonus for holding the answer's kind of words, minus a penalty
    for saying nothing beyond the question."""
    kind = answer_kind(question)
    subject = terms(question)
    q_terms = set(subject)
    scores = []
    for s, rel in zip(candidates, relevance):
        score = rel + PASSAGE_PRIOR / s.passage
        if kind == "definition":
            score += DEFINITION_BONUS if defines(s.text, subject) else 0.0
        elif kind:
            score += ANSWER_WORDS_BONUS * answer_strength(kind, s.text, question)
        if all(t in q_terms for t in terms(s.text)):
            score -= ECHO_PENALTY
        scores.append(score)
    return scores


def _complete(chosen: Sentence, passage: list[Sentence]) -> str:
    """The chosen sentence, with the one before it when it leans on it ("It is ..."), or the
    one after it when it introduces it (ends with a colon); cut to MAX_WORDS."""
    text = trim(chosen.text)
    before = passage[chosen.index - 1].text if chosen.index > 0 else None
    after = passage[chosen.index + 1].text if chosen.index + 1 < len(passage) else None
    if before and BACK_REFERENCE.match(text) and _count(before) + _count(text) <= MAX_WORDS:
        text = f"{trim(before)} {text}"
    elif after and text.endswith(":"):
        text = f"{text} {after}"  # a sentence that ends in a colon says nothing without what follows
    text = _cap(text)
    return text[0].upper() + text[1:]


def _pieces(text: str) -> list[str]:
    """The passage's sentences; one too long to quote whole is split into its clauses."""
    out = []
    for sentence in split_sentences(text):
        if _count(sentence) <= MAX_WORDS:
            out.append(sentence)
            continue
        clauses = [c for c in re.split(r"(?<=[;:])\s+", sentence) if c]
        out.extend(clauses)
    return out


def _count(text: str) -> int:
    return len(text.split())


def _cap(text: str) -> str:
    """At most MAX_WORDS words: a long sentence keeps its first clauses that fit, or is cut."""
    parts = text.split()
    if len(parts) <= MAX_WORDS:
        return text
    head = " ".join(parts[:MAX_WORDS])
    for mark in ("; ", ": ", ", "):
        cut = head.rfind(mark)
        if cut > len(head) // 2:
            return head[:cut] + " …"
    return head + " …"
