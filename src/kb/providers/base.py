"""The one interface every provider and wrapper implements, and the data it carries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from kb.documents import Hit
from kb.errors import BadResponse


class Prompt(Protocol):
    """What a provider that calls a model needs of the prompt (answering/prompt.py builds it)."""

    def render(self, context_tokens: int, reserve_output: int) -> tuple[list[dict], int]:
        """Chat messages that fit `context_tokens`, and how many passages they hold."""
        ...


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


@dataclass
class Attempt:
    provider: str  # a provider of the chain, or "reranker"
    outcome: str  # ok | error | skipped
    error: str | None  # the error's kind: timeout, rejected, circuit_open, crashed, ...
    latency_ms: float
    message: str | None = None  # one line, what went wrong and what to do; secrets masked
    stage: str = "answer"  # what the call was for: answer, condense (a conversation's question) or rerank

    def to_json(self) -> dict:
        return asdict(self)


class StreamSink(Protocol):
    def text(self, delta: str) -> None: ...
    def reset(self, reason: str) -> None: ...


@dataclass
class CompletionRequest:
    question: str
    passages: list[Hit]
    prompt: Prompt  # rendered per provider budget
    stream: StreamSink | None = None


@dataclass
class Completion:
    text: str
    provider: str
    model: str
    usage: Usage = field(default_factory=Usage)
    passages_given: int = 0  # how many of request.passages the model saw
    attempts: list[Attempt] = field(default_factory=list)


class Provider(Protocol):
    name: str

    def complete(self, request: CompletionRequest) -> Completion: ...


def require_text(text: str, provider: str) -> str:
    """An empty answer is that link's failure, never an answer (nor a cached one)."""
    if not text.strip():
        raise BadResponse(f"{provider}: the model returned an empty answer", provider=provider)
    return text
