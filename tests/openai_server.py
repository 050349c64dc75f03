"""An OpenAI-compatible test server on 127.0.0.1: /v1/chat/completions, streaming and not,
with usage, and failure modes a test can switch on.

Modes: ok, slow (sleeps `delay` s first), 429 (with Retry-After), 500, 401, reset
(connection closed without a response), malformed (200 with broken JSON), empty (a
well-formed answer whose content is empty). `script` is a
list of modes consumed one per request before `mode` applies again. `respond`, when set,
writes each answer from the request's body (a test that plays a model for several kinds of
request: condensing a conversation, then answering).
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable

from tests.fake_service import FakeService, JsonHandler


class FakeOpenAI(FakeService):
    def __init__(self, answer: str = "Queens lay up to 2,000 eggs a day [1].") -> None:
        self.answer = answer
        self.respond: Callable[[dict], str] | None = None
        self.delay = 5.0
        self.retry_after = "0"
        self.chunk_delay = 0.0  # seconds between streamed chunks, so a client can see them arrive
        self.auth = ""  # the last Authorization header received
        super().__init__()

    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with fake._lock:
                    fake.requests.append(body)
                    fake.auth = self.headers.get("Authorization", "")
                mode = fake._next_mode()
                if mode == "slow":
                    time.sleep(fake.delay)
                    mode = "ok"
                if mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if mode == "429":
                    return self._json(
                        429,
                        {"error": {"message": "slow down", "type": "rate_limit"}},
                        {"Retry-After": fake.retry_after},
                    )
                if mode == "401":  # echoes the key, as some providers do: kb must not pass it on
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    return self._json(401, {"error": {"message": f"Incorrect API key provided: {key}", "type": "auth"}})
                if mode == "500":
                    return self._json(500, {"error": {"message": "fake 500", "type": "error"}})
                if mode == "malformed":
                    data = b'{"id": "x", "choices": [ {"mess'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                answer = "" if mode == "empty" else fake.respond(body) if fake.respond else fake.answer
                prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(fake.answer.split()),
                    "total_tokens": prompt_tokens + len(fake.answer.split()),
                }
                if body.get("stream"):
                    return self._stream(body, usage, answer)
                self._json(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    },
                )

            def _stream(self, body: dict, usage: dict, answer: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                base = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body["model"],
                }
                for word in answer.split(" ") if answer else []:
                    chunk = dict(base, choices=[{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}])
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    time.sleep(fake.chunk_delay)
                self.wfile.write(f"data: {json.dumps(dict(base, choices=[], usage=usage))}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        return Handler
