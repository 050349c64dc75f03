"""The result of `kb ask`: it carries its own measurements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kb.answering.citations import Citation
from kb.providers.base import Attempt, Usage


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    provider: str
    model: str
    usage: Usage
    latency_ms: dict[str, float]
    attempts: list[Attempt] = field(default_factory=list)
    cached: bool = False
    dropped_citations: list[int] = field(default_factory=list)
    top1: float | None = None
    # What retrieval searched for: the question as asked, or, with a conversation, the
    # standalone question a language model condensed, or the weighted user turns
    # (kb.answering.conversation); `standalone_method` says which.
    standalone_question: str = ""
    standalone_method: str = "question"

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
            "provider": self.provider,
            "model": self.model,
            "cached": self.cached,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "cost_usd": self.usage.cost_usd,
            },
            "latency_ms": self.latency_ms,
            "attempts": [a.to_json() for a in self.attempts],
            "dropped_citations": self.dropped_citations,
            "standalone_question": self.standalone_question or self.question,
            "standalone_method": self.standalone_method,
        }
