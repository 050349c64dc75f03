"""Bearer tokens: required on every route but the probes once any is configured, compared
in constant time, never echoed or logged; no token configured means loopback only."""

from __future__ import annotations

from tests.conftest import run_kb
from tests.service.processes import Server

TOKENS = "first-token-abcdef123456,second-token-zyxwvu987654"


def test_tokens_are_required_everywhere_but_the_probes_hash_embedder(tmp_path):
    server = Server(tmp_path / "home", {"KB_MODEL": "hash", "KB_SERVE_TOKENS": TOKENS}).wait_ready()
    try:
        with server.client() as anonymous:
            assert anonymous.get("/healthz").status_code == 200
            assert anonymous.get("/readyz").status_code == 200
            for method, path in (("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/metrics"),
                                 ("GET", "/v1/kbs"), ("POST", "/v1/search")):  # fmt: skip
                res = anonymous.request(method, path, json={"query": "x"})
                assert res.status_code == 401, (path, res.status_code)
                assert res.json()["error"]["kind"] == "unauthorized"
                assert res.headers["www-authenticate"].startswith("Bearer")
        with server.client(token="wrong-token") as wrong:
            assert wrong.get("/v1/kbs").status_code == 401
        for token in TOKENS.split(","):
            with server.client(token=token) as right:
                assert right.get("/v1/kbs").status_code == 200
        with server.client() as http:
            assert http.get("/v1/kbs", headers={"authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    finally:
        server.stop()
    assert "first-token" not in server.output() and "second-token" not in server.output()


def test_without_tokens_kb_serve_refuses_to_listen_beyond_loopback(tmp_path):
    res = run_kb("serve", "--host", "0.0.0.0", "--port", "1", env={"KB_SERVE_TOKENS": ""})
    assert res.code == 2
    assert res.err.strip() == (
        "error: refusing to listen on 0.0.0.0 without authentication: set KB_SERVE_TOKENS (comma-separated bearer "
        "tokens) or listen on 127.0.0.1"
    )
