"""A fake reranking server on 127.0.0.1: POST /rerank in the Cohere dialect (`{"model",
"query", "documents", "top_n"}` → `{"results": [{"index", "relevance_score"}]}`) and in Text
Embeddings Inference's (`{"query", "texts"}` → `[{"index", "score"}]`), chosen by the body.
No model: a document's score is how many times it holds `favour` (a word a test picks), so a
test knows the order it must get back.

Modes, as in tests/openai_server.py: ok, slow (sleeps `delay` s first), 500, 429, 401,
malformed (200 with a body neither dialect has), reset (connection closed). `script` is a
list of modes consumed one per request before `mode` applies again.
"""

from __future__ import annotations

import json
import socket
import struct
import time

from tests.fake_service import FakeService, JsonHandler


class FakeReranker(FakeService):
    def __init__(self, favour: str = "") -> None:
        self.favour = favour
        self.delay = 5.0
        self.paths: list[str] = []
        self.auth: list[str] = []
        super().__init__()

    def score(self, text: str) -> float:
        return float(text.lower().count(self.favour.lower())) if self.favour else 0.0

    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with fake._lock:
                    fake.requests.append(body)
                    fake.paths.append(self.path)
                    fake.auth.append(self.headers.get("Authorization", ""))
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
                    return self._json(429, {"error": "slow down"}, {"Retry-After": "0"})
                if mode in ("500", "401"):
                    return self._json(int(mode), {"error": f"fake {mode}"})
                if mode == "malformed":
                    return self._json(200, {"ranking": "none"})
                if not self.path.endswith("/rerank"):
                    return self._json(404, {"error": "not found"})
                if "texts" in body:  # Text Embeddings Inference
                    scored = [{"index": i, "score": fake.score(t)} for i, t in enumerate(body["texts"])]
                    return self._json(200, sorted(scored, key=lambda r: -r["score"]))
                scored = [{"index": i, "relevance_score": fake.score(d)} for i, d in enumerate(body["documents"])]
                top = sorted(scored, key=lambda r: -r["relevance_score"])[: body.get("top_n") or len(scored)]
                self._json(200, {"id": "rerank-fake", "results": top, "meta": {}})

        return Handler
