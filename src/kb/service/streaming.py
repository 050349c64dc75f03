"""Streaming an answer as server-sent events while the provider chain generates it.

The facade calls the answer's sink from a worker thread; the sink hands each delta to the
event loop, which writes it out at once. Events:

    event: delta   data: {"text": "..."}            (as the model writes)
    event: reset   data: {"reason": "..."}          (a provider failed mid-answer; the next starts over)
    event: answer  data: {the whole answer}         (last: citations checked, usage, latency)
    event: error   data: {"error": {"kind", "message"}}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from kb.errors import KbError
from kb.service import errors

if TYPE_CHECKING:
    from kb.facade import KnowledgeBase
    from kb.service.app import Service

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
    service: Service, kb: KnowledgeBase, question: str, top_k: int | None, provider: str | None, use_cache: bool,
    options: dict | None = None,
) -> AsyncIterator[tuple[str, Any]]:  # fmt: skip
    """(event, payload) pairs; the last is ("answer", Answer) or ("error", error body).
    `options`: the retrieval options of `KnowledgeBase.ask` (mode, unique_sources)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    sink = _Sink(loop, queue)

    async def produce() -> Any:
        try:
            return await service.call(kb.ask, question, top_k, provider, use_cache, stream=sink, **(options or {}))
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
        yield "error", errors.body(errors.kind_of(exc), str(exc))
        return
    except Exception as exc:  # the stream has started: the error travels as an event
        yield "error", errors.body("internal_error", f"{type(exc).__name__}: {exc}")
        return
    service.observability.answered(answer)
    if not sink.parts and answer.answer:  # a provider that does not stream (the extractive one)
        yield "delta", {"text": answer.answer}
    yield "answer", answer


async def answer_events(
    service: Service, kb: KnowledgeBase, question: str, top_k: int | None, provider: str | None, use_cache: bool,
    render: Callable[[Any], Any], options: dict | None = None,
) -> AsyncIterator[bytes]:  # fmt: skip
    async for event, payload in answer_stream(service, kb, question, top_k, provider, use_cache, options):
        yield sse(event, render(payload) if event == "answer" else payload)
