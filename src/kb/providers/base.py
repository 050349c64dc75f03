"""The one interface every provider and wrapper implements, and the data it carries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol

from kb.documents import Hit

if TYPE_CHECKING:
    from kb.answering.prompt import Prompt


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


@dataclass
class Attempt:
    provider: str
    outcome: str  # ok | error | skipped
    error: str | None
    latency_ms: float

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
