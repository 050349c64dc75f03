"""What the fake services at the network seam share (tests/openai_server.py,
fake_reranker.py, fake_embeddings.py): a threaded HTTP server on 127.0.0.1, its /v1 base
URL, the requests it received, and a failure `mode`, with `script` (modes consumed one per
request) before it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class FakeService:
    def __init__(self) -> None:
        self.mode = "ok"
        self.script: list[str] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def hits(self) -> int:
        return len(self.requests)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_mode(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.mode

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError


class JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, body: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(body).encode(), headers)

    def _send(self, status: int, data: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
