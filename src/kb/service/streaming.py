"""Streaming an answer as server-sent events while the provider chain generates it.

The core calls the answer's sink from a worker thread; the sink hands each delta to the
event loop, which writes it out at once. Events:

    event: delta   data: {"text": "..."}            (as the model writes)
    event: reset   data: {"reason": "..."}          (a provider failed mid-answer; the next starts over)
    event: answer  data: {the whole answer}         (last: citations checked, usage, latency)
    event: error   data: {"error": {"kind", "message"}}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from kb.errors import KbError
from kb.service import errors

if TYPE_CHECKING:
    from kb.answering.conversation import Turn
    from kb.knowledge_base import KnowledgeBase
    from kb.options import SearchOptions
    from kb.service.context import Service

_DONE = object()


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class _Sink:
    """The StreamSink a provider writes to, on a worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        self.loop, self.queue = loop, queue
        self.parts: list[str] = []

    def text(self, delta: str) -> None:
        self.parts.append(delta)
        self.loop.call_soon_threadsafe(self.queue.put_nowait, ("delta", {"text": delta}))

    def reset(self, reason: str) -> None:
        self.parts = []
        self.loop.call_soon_threadsafe(self.queue.put_nowait, ("reset", {"reason": reason}))


async def answer_stream(
    service: Service,
    kb: KnowledgeBase,
    question: str,
    options: SearchOptions,
    provider: str | None,
    use_cache: bool,
    history: tuple[Turn, ...] = (),
) -> AsyncIterator[tuple[str, Any]]:
    """(event, payload) pairs; the last is ("answer", Answer) or ("error", error body)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    sink = _Sink(loop, queue)

    async def produce() -> Any:
        try:
            return await service.call(
                kb.ask, question, options=options, provider=provider, use_cache=use_cache, stream=sink, history=history
            )
        finally:
            queue.put_nowait((_DONE, None))

    task = asyncio.create_task(produce())
    while True:
        event, payload = await queue.get()
        if event is _DONE:
            break
        yield event, payload
    try:
        answer = task.result()
    except KbError as exc:
        yield "error", errors.of(exc)
        return
    except Exception as exc:  # the stream has started: the error travels as an event
        yield "error", errors.body("internal_error", f"{type(exc).__name__}: {exc}", 500)
        return
    service.observability.answered(answer)
    if not sink.parts and answer.answer:  # a provider that does not stream (the extractive one)
        yield "delta", {"text": answer.answer}
    yield "answer", answer


async def answer_events(
    service: Service,
    kb: KnowledgeBase,
    question: str,
    options: SearchOptions,
    provider: str | None,
    use_cache: bool,
    history: tuple[Turn, ...] = (),
) -> AsyncIterator[bytes]:
    """The answer stream as server-sent events, the answer last as `kb ask --json` prints it."""
    async for event, payload in answer_stream(service, kb, question, options, provider, use_cache, history):
        yield sse(event, payload.to_json() if event == "answer" else payload)
