"""A fake OpenAI-compatible embeddings service on 127.0.0.1 (the network seam): POST
/v1/embeddings answers with the vectors of kb's HashEmbedder, as floats or base64 as
asked, and failure modes a test can switch on.

Modes: ok, 429 (with Retry-After), 500, 401, reset (connection closed without a response),
garbage (200 with a body that is not JSON), short (one embedding fewer than inputs), nan
(a NaN in the first vector), wide (vectors of another dimension). `script` is a list of
modes consumed one per request before `mode` applies again. `meet` > 1 holds the first
requests (bounded) until that many have arrived, so they are in flight together only if
the client sends them concurrently: a test tells the two apart without timing anything.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
from typing import Any

from kb.embedding.hashing import HashEmbedder
from tests.fake_service import FakeService, JsonHandler


class FakeEmbeddings(FakeService):
    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension
        self.retry_after = "0"
        self.auth: list[str] = []  # the Authorization header of each request
        self.meet = 1
        self.in_flight = 0
        self.arrived = 0
        self.most_in_flight = 0
        self._met = threading.Condition()
        super().__init__()

    @property
    def texts(self) -> list[str]:
        return [t for r in self.requests for t in r["input"]]

    def _arrive(self) -> None:
        with self._met:
            self.in_flight += 1
            self.arrived += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._met.notify_all()
            self._met.wait_for(lambda: self.arrived >= self.meet, timeout=5)

    def _leave(self) -> None:
        with self._met:
            self.in_flight -= 1

    def vectors(self, texts: list[str], encoding: str, dimension: int) -> list[dict[str, Any]]:
        matrix = HashEmbedder(dimension).embed(texts)
        data = []
        for i, row in enumerate(matrix):
            value: Any = (
                base64.b64encode(row.astype("<f4").tobytes()).decode() if encoding == "base64" else row.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        return data

    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with fake._lock:
                    fake.requests.append(body)
                    fake.auth.append(self.headers.get("Authorization", ""))
                fake._arrive()
                try:
                    self._answer(body, fake._next_mode())
                finally:
                    fake._leave()

            def _answer(self, body: dict, mode: str) -> None:
                if self.path != "/v1/embeddings":
                    return self._send(404, b'{"error": {"message": "no such route"}}')
                if mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return None
                if mode == "429":
                    return self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": fake.retry_after})
                if mode == "500":
                    return self._send(500, b'{"error": {"message": "fake 500: out of GPU memory"}}')
                if mode == "401":  # quotes the key, as some services do: kb must not pass it on
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    return self._send(401, json.dumps({"error": {"message": f"invalid api key {key}"}}).encode())
                if mode == "garbage":
                    return self._send(200, b"<html>502 Bad Gateway</html>")
                texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
                dimension = fake.dimension * 2 if mode == "wide" else fake.dimension
                data = fake.vectors(texts, body.get("encoding_format") or "float", dimension)
                if mode == "short":
                    data = data[:-1]
                if mode == "nan":
                    data[0]["embedding"] = [float("nan")] * dimension
                tokens = sum(len(t.split()) for t in texts)
                answer = {"object": "list", "data": data, "model": body.get("model"),
                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip
                return self._send(200, json.dumps(answer).encode())

        return Handler
