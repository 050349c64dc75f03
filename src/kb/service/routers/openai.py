"""Model-as-a-service in the ecosystem's own dialect, so any OpenAI client can use kb:

- GET /v1/models, /v1/models/{id}: the knowledge bases the token may use, as models.
- POST /v1/embeddings: kb's embedding model (float lists, or base64 as the official
  clients ask for by default); at most MAX_INPUTS texts of MAX_INPUT_CHARS characters.
  Another kb can use it as its `[embedding] kind = "openai"` service.
- POST /v1/chat/completions: the "model" is a knowledge base; the last user message is the
  question and the user and assistant messages before it the conversation, so the passages
  are retrieved for the question as the conversation means it (kb.answering.conversation);
  the reply is kb's answer with its numbered sources, streamed if asked. The full answer
  object (citations, attempts, the standalone question searched) rides along as
  `kb_answer`. kb's own extra body fields: `filter` (as /v1/search's) and `rerank`.

Parameters kb cannot honour are refused with OpenAI's 400 `invalid_request_error` naming
them (n > 1, tools, logprobs, a JSON response format, other dimensions...), instead of being
ignored. Sampling parameters (temperature, top_p, max_tokens, stop, seed, penalties) are
accepted and not applied: kb answers through its configured provider chain.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kb.answering.conversation import clean_history
from kb.answering.question import clean_question
from kb.errors import InputError, KbNotFound
from kb.options import SearchOptions
from kb.service.auth import Principal, need
from kb.service.context import Service, ServiceDep, ok
from kb.service.schemas import FILTER_FIELD, GUARDED, RERANK_FIELD, FilterModel, KbName, Text, errors, search_filter
from kb.service.streaming import answer_stream

if TYPE_CHECKING:
    from kb.answering.answer import Answer
    from kb.answering.conversation import Turn
    from kb.embedding import Embedder
    from kb.home import Home
    from kb.knowledge_base import KnowledgeBase

router = APIRouter(tags=["openai"], responses=errors(*GUARDED, 400, 403, 404))
Reader = Annotated[Principal, Depends(need("read", "use the OpenAI dialect"))]

MAX_INPUTS = 256
MAX_INPUT_CHARS = 16_384  # far past the model's 256 word pieces, which is all it reads
QUERY_BATCH = 8  # more texts than this in one request go to the ingest encoder


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # the dialect's other parameters: see _refuse_unsupported


def _refuse_unsupported(body: BaseModel, rules: dict[str, Any]) -> None:
    """400 naming the first parameter kb cannot honour: `rules` maps a parameter to the only
    values kb accepts (a tuple), or to None when any value at all is refused."""
    given = {**body.__dict__, **(body.model_extra or {})}
    for name, allowed in rules.items():
        value = given.get(name)
        if value is None or (allowed is not None and value in allowed):
            continue
        raise InputError(f"{name}={json.dumps(value)[:60]} is not supported by kb", field=name)


class EmbeddingsRequest(_Open):
    input: Text | list[Text] = Field(..., description=f"A text or up to {MAX_INPUTS} texts, {MAX_INPUT_CHARS} "
                                     "characters each.")  # fmt: skip
    model: str | None = Field(None, description="Ignored: kb has one embedding model (see GET /v1/info).")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, description="Only the model's own dimension.")


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None


class ChatRequest(_Open):
    model: KbName = Field(..., description="The knowledge base to answer from.")
    messages: list[ChatMessage] = Field(
        ..., min_length=1, description="The conversation: the last user message is the question; the user and "
        "assistant messages before it are its context (system, developer and tool messages are not used).",
    )  # fmt: skip
    stream: bool = False
    filter: FilterModel | None = FILTER_FIELD
    rerank: bool | None = RERANK_FIELD


_CHAT_UNSUPPORTED: dict[str, Any] = {
    "n": (1,), "tools": ([],), "tool_choice": ("none",), "functions": ([],), "function_call": ("none",),
    "logprobs": (False,), "top_logprobs": (0,), "audio": None, "prediction": None, "logit_bias": ({},),
    "modalities": (["text"],), "response_format": ({"type": "text"},),
}  # fmt: skip


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n".join(part.text for part in message.content or [])


def _conversation(messages: list[ChatMessage]) -> tuple[str, tuple[Turn, ...]]:
    """(the question: the last user message, the user and assistant turns before it)."""
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last is None:
        raise InputError("no user message: the last user message is the question", field="messages")
    earlier = [{"role": m.role, "content": _text(m)} for m in messages[:last] if m.role in ("user", "assistant")]
    return _text(messages[last]), clean_history(earlier)


def _reply(answer: Answer) -> str:
    lines = [answer.answer]
    if answer.citations:
        lines.append("")
        for c in answer.citations:
            where = c.hit.location()
            lines.append(f"[{c.n}] {c.hit.source}" + (f", {where}" if where else ""))
    return "\n".join(lines)


def _usage(answer: Answer) -> dict[str, Any]:
    u = answer.usage
    usage: dict[str, Any] = {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
                             "total_tokens": u.input_tokens + u.output_tokens}  # fmt: skip
    if answer.cached:
        usage["kb_note"] = "answered from kb's cache: no model was called"
    elif answer.provider == "extractive":
        usage["kb_note"] = "answered extractively from the passages: no model tokens were used"
    return usage


def _model(name: str, service: Service) -> dict[str, Any]:
    folder = service.settings.kbs_dir / name
    created = int(os.stat(folder).st_ctime) if folder.exists() else 0
    return {"id": name, "object": "model", "created": created, "owned_by": "kb"}


@router.get("/v1/models")
async def models(service: ServiceDep, principal: Reader) -> Response:
    """The knowledge bases the token may use, as OpenAI models (`client.models.list()`)."""
    names = await service.call(service.library.names)
    return ok(
        {"object": "list", "data": [_model(n, service) for n in names if principal.every_kb or n in principal.kbs]}
    )


@router.get("/v1/models/{model}")
async def model(model: Annotated[KbName, Path(examples=["notes"])], service: ServiceDep, principal: Reader) -> Response:
    """One knowledge base, as an OpenAI model."""
    principal.require_kb(model)
    if not await service.call(service.library.home.exists, model):
        raise KbNotFound(f"there is no model {model!r}: no knowledge base of that name", kb=model)
    return ok(_model(model, service))


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingsRequest, service: ServiceDep, principal: Reader) -> Response:
    """Vectors from kb's embedding model, in OpenAI's shape."""
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts or len(texts) > MAX_INPUTS:
        raise InputError(f"send 1 to {MAX_INPUTS} inputs, not {len(texts)}", field="input")
    if any(not t or len(t) > MAX_INPUT_CHARS for t in texts):
        raise InputError(f"every input must be a non-empty text of at most {MAX_INPUT_CHARS} characters", field="input")
    home = service.library.home
    if len(texts) > QUERY_BATCH:
        # Many texts are documents (another kb ingesting through this one): the ingest
        # encoder, on every core, without filling the query cache.
        embedded = await service.call(_embedded, home.embedder, home, texts)
    else:  # a few are queries: batched with other requests' and cached
        embedded = await service.batcher.submit("embeddings", texts,
                                                functools.partial(_embedded, home.query_embedder, home))  # fmt: skip
    width = len(embedded[0][0])
    if body.dimensions is not None and body.dimensions != width:
        raise InputError(f"dimensions={body.dimensions}: kb's model gives {width} only", field="dimensions")
    tokens = sum(count for _, count in embedded)
    data = []
    for i, (row, _) in enumerate(embedded):
        value: Any = (
            base64.b64encode(row.astype("<f4").tobytes()).decode() if body.encoding_format == "base64" else row.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    return ok({"object": "list", "data": data, "model": home.model_id,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip


def _embedded(encoder: Embedder, home: Home, texts: list[str]) -> list[tuple[np.ndarray, int]]:
    """Each text's vector and word-piece count, for every text of a batch of requests."""
    vectors = np.asarray(encoder.embed(texts), dtype=np.float32)
    return [(row, home.chunker.count(text)) for row, text in zip(vectors, texts, strict=True)]


@router.post(
    "/v1/chat/completions",
    responses={200: {"description": "A chat.completion, or with `stream` its chunks as server-sent events.",
                     "content": {"text/event-stream": {}}}, **errors(503)},
)  # fmt: skip
async def chat(body: ChatRequest, service: ServiceDep, principal: Reader) -> Response:
    """A RAG answer from the knowledge base named by `model`, with citations."""
    _refuse_unsupported(body, _CHAT_UNSUPPORTED)
    kb = service.kb(principal, body.model)
    question, history = _conversation(body.messages)
    clean_question(question, service.settings.max_question_chars)  # refused before any stream starts
    options = SearchOptions().merged(filter=search_filter(body.filter), rerank=body.rerank)
    if body.stream:
        await service.call(kb.access.storage.require, kb.name)
    created, completion_id = int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if body.stream:
        chunks = _chunks(service, kb, question, options, history, body.model, completion_id, created)
        return StreamingResponse(chunks, media_type="text/event-stream")
    answer = await service.call(kb.ask, question, options=options, history=history)
    service.observability.answered(answer)
    return ok(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": _reply(answer)}, "finish_reason": "stop"}
            ],
            "usage": _usage(answer),
            "kb_answer": answer.to_json(),
        }
    )


async def _chunks(
    service: Service,
    kb: KnowledgeBase,
    question: str,
    options: SearchOptions,
    history: tuple[Turn, ...],
    model: str,
    completion_id: str,
    created: int,
) -> AsyncIterator[bytes]:
    """OpenAI's chunk stream: the answer as it is written, then its sources, then [DONE]."""

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    async for event, payload in answer_stream(service, kb, question, options, None, True, history):
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
