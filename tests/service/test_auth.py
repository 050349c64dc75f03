"""Bearer tokens: required on every route but the probes and the API's documentation once any
is configured, compared in constant time, never echoed or logged; no token configured means
loopback only."""

from __future__ import annotations

from tests.conftest import run_kb
from tests.service.processes import Server

TOKENS = "first-token-abcdef123456,second-token-zyxwvu987654"


def test_tokens_are_required_everywhere_but_the_probes_and_docs_hash_embedder(tmp_path):
    server = Server(tmp_path / "home", {"KB_MODEL": "hash", "KB_SERVE_TOKENS": TOKENS}).wait_ready()
    try:
        with server.client() as anonymous:
            assert anonymous.get("/healthz").status_code == 200
            assert anonymous.get("/readyz").status_code == 200
            docs = anonymous.get("/docs")  # the documentation holds no data, and loads offline
            assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
            assert anonymous.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
            assert "HTTPBearer" in anonymous.get("/openapi.json").json()["components"]["securitySchemes"]
            for method, path in (("GET", "/metrics"), ("GET", "/v1/kbs"), ("POST", "/v1/search"),
                                 ("GET", "/v1/models"), ("GET", "/v1/tokens")):  # fmt: skip
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
        "error: refusing to listen on 0.0.0.0 without authentication: create a token (`kb tokens create NAME`), "
        "set KB_SERVE_TOKENS (comma-separated bearer tokens), or listen on 127.0.0.1"
    )


def test_sigterm_lets_in_flight_requests_finish_hash_embedder(tmp_path, fake_openai):
    """A question still being answered when the server is told to stop gets its answer."""
    import signal
    import threading

    from tests.conftest import provider_config, write_config

    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "n.md").write_text("# Notes\n\nQueens lay up to 2,000 eggs a day.\n")
    write_config(home, provider_config(fake_openai.url, timeout_s=10, max_retries=0))
    assert run_kb("ingest", docs, env={"KB_MODEL": "hash", "KB_HOME": str(home)}).code == 0
    fake_openai.mode, fake_openai.delay = "slow", 3.0
    server = Server(home, {"KB_MODEL": "hash", "KB_TEST_KEY": "sk-test"}).wait_ready()
    result: dict = {}

    def ask() -> None:
        with server.client() as http:
            result["res"] = http.post("/v1/ask", json={"question": "How many eggs?", "no_cache": True})

    asking = threading.Thread(target=ask)
    asking.start()
    from tests.service.processes import wait_for

    wait_for(lambda: fake_openai.hits >= 1, 30, "the question to reach the model")
    server.proc.send_signal(signal.SIGTERM)
    asking.join(timeout=60)
    code = server.stop()
    assert result["res"].status_code == 200, result["res"].text
    assert result["res"].json()["provider"] == "primary"
    assert code in (0, -signal.SIGTERM)
