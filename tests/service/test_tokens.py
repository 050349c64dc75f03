"""Scoped tokens on a real `kb serve`: what each scope may do, tokens limited to knowledge
bases, rate limits with Retry-After, expiry and revocation (seen by the server within a
second), KB_SERVE_TOKENS as admin tokens, and /metrics counting what was refused. The
store is tokens.db here; tests/cluster runs the same on Redis across instances."""

from __future__ import annotations

import shutil
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SAMPLE, run_kb
from tests.service.processes import Server, wait_for

ADMIN = "env-admin-token-0123456789abcdef"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    home, docs = root / "home", root / "docs"
    shutil.copytree(SAMPLE, docs)
    env = {"KB_MODEL": "hash", "KB_HOME": str(home)}
    assert run_kb("ingest", docs, env=env).code == 0
    assert run_kb("--kb", "notes", "ingest", docs / "honey_harvest.md", env=env).code == 0
    tokens = {}
    for name, *args in (("reader", "--scope", "read"), ("writer", "--scope", "write"),
                        ("notes-only", "--scope", "write", "--kb", "notes"), ("slow", "--rpm", "3"),
                        ("brief", "--expires", "2s")):  # fmt: skip
        made = run_kb("tokens", "create", name, *args, "--json", env=env)
        assert made.code == 0, made.err
        tokens[name] = made.json()["token"]
    server = Server(home, {**env, "KB_SERVE_TOKENS": ADMIN, "KB_SERVE_ROOTS": str(docs)}).wait_ready()
    yield server, home, docs, tokens, env
    server.stop()


def _status(server, token, method, path, **kwargs) -> int:
    with server.client(token=token) as http:
        return http.request(method, path, **kwargs).status_code


def test_scopes_allow_what_they_say(served):
    server, _, docs, tokens, _ = served
    search = ("POST", "/v1/search", {"json": {"query": "queen"}})
    ingest = ("POST", "/v1/ingest", {"json": {"paths": [str(docs / "bee_biology.md")]}})
    list_tokens = ("GET", "/v1/tokens", {})
    expected = {
        "reader": {"search": 200, "ingest": 403, "tokens": 403},
        "writer": {"search": 200, "ingest": 202, "tokens": 403},
        ADMIN: {"search": 200, "ingest": 202, "tokens": 200},
    }
    for token, wants in expected.items():
        secret = tokens.get(token, token)
        for name, (method, path, kwargs) in (("search", search), ("ingest", ingest), ("tokens", list_tokens)):
            assert _status(server, secret, method, path, **kwargs) == wants[name], (token, name)
    with server.client(token=tokens["reader"]) as http:
        refused = http.post("/v1/ingest", json={"paths": [str(docs)]}).json()["error"]
    assert (
        refused["kind"] == "forbidden" and "write scope" in refused["message"] and refused["type"] == "permission_error"
    )


def test_every_token_may_read_what_it_may_do(served):
    server, _, _, tokens, _ = served
    answers = {}
    for name in ("reader", "notes-only"):  # not "slow": its three requests a minute are for the rate limit test
        with server.client(token=tokens[name]) as http:
            answers[name] = http.get("/v1/token").json()
    assert answers["reader"] == {"name": "reader", "scope": "read", "kbs": [], "rpm": None}
    assert answers["notes-only"] == {"name": "notes-only", "scope": "write", "kbs": ["notes"], "rpm": None}
    with server.client(token=ADMIN) as http:
        assert http.get("/v1/token").json() == {"name": "KB_SERVE_TOKENS", "scope": "admin", "kbs": [], "rpm": None}
    with server.client() as http:
        refused = http.get("/v1/token")
        assert refused.status_code == 401 and "bearer token" in refused.json()["error"]["message"]
        assert http.get("/ui/server.json").json()["token_required"] is True  # the page asks first, no 401


def test_a_token_limited_to_a_kb_gets_403_elsewhere(served):
    server, _, _, tokens, _ = served
    limited = tokens["notes-only"]
    assert _status(server, limited, "POST", "/v1/search", json={"query": "honey", "kb": "notes"}) == 200
    assert _status(server, limited, "POST", "/v1/search", json={"query": "honey"}) == 403  # the default KB
    assert _status(server, limited, "GET", "/v1/documents", params={"kb": "default"}) == 403
    with server.client(token=limited) as http:
        assert [k["kb"] for k in http.get("/v1/kbs").json()["kbs"]] == ["notes"]
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["notes"]
        assert http.post("/v1/chat/completions", json={"model": "default", "messages": [
            {"role": "user", "content": "hi"}]}).status_code == 403  # fmt: skip


def test_rate_limit_answers_429_with_retry_after(served):
    server, _, _, tokens, _ = served
    with server.client(token=tokens["slow"]) as http:
        answers = [http.get("/v1/kbs") for _ in range(5)]
    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    limited = answers[3]
    assert limited.status_code == 429 and limited.json()["error"]["kind"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60


def test_expired_and_revoked_tokens_are_refused(served):
    server, _, _, tokens, env = served
    wait_for(lambda: _status(server, tokens["brief"], "GET", "/v1/kbs") == 401, 30, "the short token to expire")
    with server.client(token=tokens["brief"]) as http:
        assert "expired" in http.get("/v1/kbs").json()["error"]["message"]
    assert _status(server, tokens["writer"], "GET", "/v1/kbs") == 200
    revoked = time.monotonic()
    assert run_kb("tokens", "revoke", "writer", env=env).code == 0
    wait_for(lambda: _status(server, tokens["writer"], "GET", "/v1/kbs") == 401, 10, "the revocation")
    assert time.monotonic() - revoked < 5  # read again within a second; the margin is for a loaded machine
    listed = {t["name"]: t for t in run_kb("tokens", "list", "--json", env=env).ndjson()}
    assert listed["writer"]["revoked_at"] and "token" not in listed["writer"]  # never the secret


def test_admin_tokens_manage_tokens_over_http(served):
    server, _, _, _, _ = served
    with server.client(token=ADMIN) as http:
        made = http.post("/v1/tokens", json={"name": "made-over-http", "scope": "read", "kbs": ["notes"]})
        assert made.status_code == 201 and made.json()["token"].startswith("kb_")
        secret = made.json()["token"]
        assert _status(server, secret, "POST", "/v1/search", json={"query": "honey", "kb": "notes"}) == 200
        assert http.post("/v1/tokens", json={"name": "made-over-http"}).status_code == 409
        assert http.delete("/v1/tokens/made-over-http").json()["revoked_at"]
        assert http.delete("/v1/tokens/nope").json()["error"]["kind"] == "token_not_found"
    wait_for(lambda: _status(server, secret, "GET", "/v1/kbs") == 401, 10, "the revocation")


def test_metrics_count_refusals_by_route(served):
    server, _, _, tokens, _ = served
    _status(server, "wrong", "POST", "/v1/search", json={"query": "x"})  # 401
    _status(server, tokens["reader"], "GET", "/v1/tokens")  # 403
    _status(server, ADMIN, "POST", "/v1/search", content=b"x" * (11 * 1024 * 1024),
            headers={"content-type": "application/json"})  # 413  # fmt: skip
    with server.client(token=ADMIN) as http:
        text = http.get("/metrics").text
    counted = {
        (s.labels["route"], s.labels["status"])
        for f in text_string_to_metric_families(text) if f.name == "kb_http_requests"
        for s in f.samples if s.name.endswith("_total")
    }  # fmt: skip
    assert {("/v1/search", "401"), ("/v1/tokens", "403"), ("/v1/search", "413")} <= counted


def test_the_cli_prints_a_secret_once_and_stores_its_digest(tmp_path):
    env = {"KB_HOME": str(tmp_path / "home")}
    made = run_kb("tokens", "create", "ci", "--scope", "admin", env=env)
    assert made.code == 0 and made.out.strip().startswith("kb_")
    stored = (tmp_path / "home" / "tokens.db").read_bytes()
    assert made.out.strip().encode() not in stored
    again = run_kb("tokens", "create", "ci", env=env)
    assert again.code == 2 and "a token named 'ci' exists" in again.err  # names are unique (409 over HTTP)
    bad = run_kb("tokens", "create", "x", "--scope", "root", env=env)
    assert bad.code == 2 and "'root' is not a scope" in bad.err
