"""A webhook receiver on 127.0.0.1 that verifies every delivery with the standardwebhooks
package, the way a real receiver would, and fails in the ways a test switches on.

Modes: ok (200), 500, 410, 429 (with Retry-After), redirect (302), slow (sleeps `delay` s,
then 200), reset (closes the connection without answering). `script` is a list of modes
consumed one per request before `mode` applies again. With `tls=(certfile, keyfile)` it
speaks HTTPS. `free_port()` gives a port nobody listens on, for a receiver that is down.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any  # what verify() returned, None if verification failed
    error: str | None  # why verification failed


class Receiver:
    def __init__(self, secret: str, tls: tuple[str, str] | None = None) -> None:
        self.secret = secret
        self.mode = "ok"
        self.script: list[str] = []
        self.delay = 2.0
        self.retry_after = "0"
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        # A short poll interval: shutdown() waits up to one interval, for every test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/kb"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_mode(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.mode

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            payload, error = Webhook(self.secret).verify(body, headers), None
        except WebhookVerificationError as exc:
            payload, error = None, str(exc)
        with self._lock:
            self.received.append(Received(path, headers, body, payload, error))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._record(self.path, dict(self.headers.items()), body)
                mode = receiver._next_mode()
                if mode == "slow":
                    time.sleep(receiver.delay)
                    mode = "ok"
                if mode == "reset":  # RST instead of an answer
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                elif mode == "429":
                    self._reply(429, {"Retry-After": receiver.retry_after})
                elif mode == "redirect":
                    self._reply(302, {"Location": "/elsewhere"})
                elif mode == "ok":
                    self._reply(200)
                else:
                    self._reply(int(mode))

        return Handler


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
