"""Model-as-a-service in the ecosystem's own dialect, so any OpenAI client can use kb:

- POST /v1/embeddings: kb's embedding model (float lists, or base64 as the official
  clients ask for by default).
- POST /v1/chat/completions: the "model" is a knowledge base; the last user message is the
  question; the reply is kb's answer with its numbered sources, streamed if asked. The
  full answer object (citations, attempts) rides along as `kb_answer`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kb.errors import InputError
from kb.options import SearchOptions
from kb.service.context import Service, ServiceDep
from kb.service.streaming import answer_stream

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.knowledge_base import KnowledgeBase

router = APIRouter(tags=["openai"])

MAX_INPUTS = 256


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str] = Field(..., description="A text or a list of texts.")
    model: str | None = Field(None, description="Ignored: kb has one embedding model (see GET /v1/info).")
    encoding_format: Literal["float", "base64"] = "float"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ...: the chain has its own settings
    model: str = Field(..., description="The knowledge base to answer from.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False


def _question(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            if isinstance(message.content, str):
                return message.content
            parts = [p.get("text", "") for p in message.content or [] if p.get("type") == "text"]
            return "\n".join(parts)
    raise InputError("no user message: the last user message is the question")


def _reply(answer: Answer) -> str:
    lines = [answer.answer]
    if answer.citations:
        lines.append("")
        for c in answer.citations:
            where = c.hit.location()
            lines.append(f"[{c.n}] {c.hit.source}" + (f", {where}" if where else ""))
    return "\n".join(lines)


def _usage(answer: Answer) -> dict:
    u = answer.usage
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens}  # fmt: skip


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingsRequest, service: ServiceDep) -> dict:
    """Vectors from kb's embedding model, in OpenAI's shape."""
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts or len(texts) > MAX_INPUTS:
        raise InputError(f"send 1 to {MAX_INPUTS} inputs, not {len(texts)}")
    if any(not isinstance(t, str) or not t for t in texts):
        raise InputError("every input must be a non-empty string")
    home = service.library.home
    vectors = await service.call(home.query_embedder.embed, texts)
    tokens = await service.call(lambda: sum(home.chunker.count(t) for t in texts))
    data = []
    for i, row in enumerate(np.asarray(vectors, dtype=np.float32)):
        value: Any = (
            base64.b64encode(row.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else [float(x) for x in row]
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {"object": "list", "data": data, "model": home.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip


@router.post("/v1/chat/completions", response_model=None)
async def chat(body: ChatRequest, service: ServiceDep) -> Any:
    """A RAG answer from the knowledge base named by `model`, with citations."""
    kb = service.library.kb(body.model)
    question = _question(body.messages)
    created, completion_id = int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if body.stream:
        return StreamingResponse(_chunks(service, kb, question, body.model, completion_id, created),
                                 media_type="text/event-stream")  # fmt: skip
    answer = await service.call(kb.ask, question)
    service.observability.answered(answer)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": _reply(answer)}, "finish_reason": "stop"}],
        "usage": _usage(answer),
        "kb_answer": answer.to_json(),
    }


async def _chunks(
    service: Service, kb: KnowledgeBase, question: str, model: str, completion_id: str, created: int
) -> AsyncIterator[bytes]:
    """OpenAI's chunk stream: the answer as it is written, then its sources, then [DONE]."""

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    async for event, payload in answer_stream(service, kb, question, SearchOptions(), None, True):
        if event == "delta":
            yield chunk({"content": payload["text"]})
        elif event == "reset":
            yield chunk({"content": f"\n\n({payload['reason']}; answering again)\n\n"})
        elif event == "error":
            yield f"data: {json.dumps(payload)}\n\n".encode()
            return
        elif event == "answer":
            sources = _reply(payload)[len(payload.answer) :]
            if sources:
                yield chunk({"content": sources})
            yield chunk({}, "stop", usage=_usage(payload), kb_answer=payload.to_json())
    yield b"data: [DONE]\n\n"
