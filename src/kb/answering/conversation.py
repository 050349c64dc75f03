"""Conversations: answering the last question of a chat as the conversation means it.

"What temperature should it be?" after "How do I make candles from beeswax?" is a question
about beeswax candles; searched alone, it finds whatever else the documents say about
temperatures. So a question asked with earlier turns (`history`) is searched as a
standalone question, formed one of two ways:

- **condensed**, when the provider chain has a language model: the model rewrites the last
  message, with the conversation before it, as one question that stands alone (the
  condense-question pattern of LlamaIndex's chat engines; the prompt below is ours). The
  model links are tried in order, with their retries and breakers; if none answers, the
  question is weighted instead, and the failed attempts make the answer uncached.
- **weighted**, without one: the last user turn searched together with the three user turns
  before it (older ones are left out). Dense search mixes their embeddings, the last turn
  weighing 1 and the earlier ones 0.25, 0.125 and 0.0625; keyword search looks for all their
  words, which FTS5 cannot weigh (kb.retrieval.query). On 22 conversations written over
  sample_corpus (eval/sample/conversations.jsonl, benchmarks/conversation_retrieval.py) the
  earlier words are what finds the document a follow-up means, and a low dense weight is
  what keeps a new topic from being pulled back to the old one (docs/quality.md). The
  assistant's turns are left out: they are kb's own earlier answers, and a wrong one would
  pull the search further off.

The history also reaches the language model's prompt, bounded by its context (prompt.py);
the extractive answerer reads the standalone question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from kb.answering.budget import estimate_tokens
from kb.answering.question import check_text
from kb.errors import InputError
from kb.retrieval.query import Query

Role = Literal["user", "assistant"]
ROLES: tuple[Role, ...] = get_args(Role)
EARLIER_WEIGHTS = (0.25, 0.125, 0.0625)  # the user turns before the last, newest first
MAX_TURNS = 50  # the newest turns kept of a longer history
MAX_TURN_CHARS = 8000  # a longer turn keeps its end (an answer's last words, a message's question)

Method = Literal["question", "condensed", "weighted"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation before the question: the user's, or kb's answer."""

    role: Role
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Turn:
        return cls(data["role"], data["content"])


def clean_history(history: Iterable[Turn | Mapping[str, Any]]) -> tuple[Turn, ...]:
    """The turns as kb uses them: roles checked, text normalised (single spaces), empty turns
    dropped, each cut to MAX_TURN_CHARS, the newest MAX_TURNS kept."""
    out = []
    for i, raw in enumerate(history):
        turn = raw if isinstance(raw, Turn) else Turn.from_json(raw)
        if turn.role not in ROLES:
            raise InputError(f"turn {i + 1} has the role {turn.role!r}; use user or assistant", field="history")
        if not isinstance(turn.content, str):
            raise InputError(f"turn {i + 1} has no text content", field="history")
        text = " ".join(check_text(turn.content, f"turn {i + 1} of the history", "history").split())
        if text:
            out.append(Turn(turn.role, text[-MAX_TURN_CHARS:]))
    return tuple(out[-MAX_TURNS:])


def weighted(history: tuple[Turn, ...], question: str) -> Query:
    """The question searched with the user turns before it, by weight (see the module)."""
    earlier = [t.content for t in history if t.role == "user"][-len(EARLIER_WEIGHTS) :]
    if not earlier:
        return Query(question)
    parts = [(text, EARLIER_WEIGHTS[len(earlier) - 1 - i]) for i, text in enumerate(earlier)]
    return Query(" ".join([*earlier, question]), (*parts, (question, 1.0)))


CONDENSE_SYSTEM = """You turn the last message of a conversation into one question that can be understood without the conversation.
- Replace every word that points back (it, this, that, they, there, the first one) with what it refers to in the conversation.
- Keep the meaning, the details and the language of the last message; add nothing the conversation does not say.
- If the last message already stands alone, repeat it unchanged.
- Reply with the question only: no answer, no preamble, no quotes."""


@dataclass
class CondensePrompt:
    """The prompt that asks a language model for the standalone question."""

    history: tuple[Turn, ...]
    question: str

    def render(self, context_tokens: int, reserve_output: int) -> tuple[list[dict], int]:
        budget = context_tokens - reserve_output - estimate_tokens(CONDENSE_SYSTEM) - estimate_tokens(self.question)
        lines: list[str] = []
        for turn in reversed(self.history):  # the newest turns that fit
            line = f"{'User' if turn.role == 'user' else 'Assistant'}: {turn.content}"
            cost = estimate_tokens(line) + 1
            if cost > budget - 48:
                break
            lines.insert(0, line)
            budget -= cost
        user = "Conversation:\n" + "\n".join(lines) + f"\n\nLast message: {self.question}\n\nStandalone question:"
        return [{"role": "system", "content": CONDENSE_SYSTEM}, {"role": "user", "content": user}], 0


_LABEL = re.compile(r"^(standalone question|question)\s*:\s*", re.IGNORECASE)


def standalone_text(reply: str, max_chars: int) -> str | None:
    """The question in a model's reply (its first line, labels and quotes removed), or None
    when there is none to use."""
    for line in reply.splitlines():
        text = _LABEL.sub("", line.strip()).strip().strip("\"'“”‘’`").strip()
        if text:
            return text[:max_chars]
    return None
