"""Webhook deliveries against a real receiver on 127.0.0.1 that verifies each one with the
standardwebhooks package: signing, retries with backoff, giving up, the attempts recorded,
and the secret kept out of everything kb records."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import subprocess
import time
from datetime import UTC, datetime

import certifi
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from kb.config import load_settings
from kb.errors import WebhookError
from kb.jobs import webhooks
from kb.jobs.webhooks import Allow, Message, deliver, notify, read_secret, sign
from tests.conftest import write_config
from tests.jobs.receiver import Receiver, free_port

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
LOOPBACK = Allow.of(["127.0.0.1"])  # the receivers of these tests, and nothing else
JOB = {"id": "job_1", "kind": "ingest", "status": "done", "result": {"added": 3}}


class FakeClock:
    """A monotonic clock that only the injected sleep moves: backoff without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def receiver():
    server = Receiver(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def send(url: str, clock: FakeClock, *, event: str = "job.done", timeout_s: float = 2, retry_for_s: float = 60):
    message = Message.create(event, JOB, SECRET)
    delivery = deliver(
        url,
        message,
        timeout_s=timeout_s,
        retry_for_s=retry_for_s,
        allow=LOOPBACK,
        sleep=clock.sleep,
        clock=clock,
    )
    return message, delivery


def test_a_delivery_is_signed_the_standard_webhooks_way(receiver, clock):
    message, delivery = send(receiver.url, clock)
    assert delivery.delivered and delivery.error is None
    [attempt] = delivery.attempts
    assert (attempt.n, attempt.status, attempt.error, attempt.address) == (1, 200, None, "127.0.0.1")
    [got] = receiver.received
    assert got.error is None, got.error  # standardwebhooks verified the signature
    assert got.payload["type"] == "job.done" and got.payload["data"] == JOB
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", got.payload["timestamp"])
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-id"] == message.id == delivery.msg_id and re.fullmatch(r"msg_[0-9a-f]{32}", message.id)
    assert headers["webhook-signature"].startswith("v1,")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("kb-webhooks/")
    assert got.path == "/hooks/kb" and clock.sleeps == []


def test_a_tampered_body_or_another_secret_fails_verification():
    body = webhooks.event_body("job.failed", JOB)
    headers = sign(SECRET, "msg_1", int(time.time()), body)
    assert Webhook(SECRET).verify(body, headers)["type"] == "job.failed"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"job_1", b"job_2"), headers)
    other = "whsec_" + base64.b64encode(bytes(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    # Receivers refuse timestamps older than five minutes: why every attempt is signed afresh.
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(body, sign(SECRET, "msg_1", int(time.time()) - 600, body))


def test_5xx_is_retried_with_growing_backoff_and_the_same_message_id(receiver, clock):
    receiver.script = ["500", "503", "502"]
    message, delivery = send(receiver.url, clock)
    assert delivery.delivered
    assert [a.status for a in delivery.attempts] == [500, 503, 502, 200]
    assert [a.n for a in delivery.attempts] == [1, 2, 3, 4]
    assert all(a.error == f"receiver answered {a.status}" for a in delivery.attempts[:3])
    assert {r.headers["webhook-id"] for r in receiver.received} == {message.id}
    assert all(r.error is None for r in receiver.received)  # every retry verifies too
    # Exponential with jitter: attempt n waits between half and all of 0.5 * 2**(n-1) seconds.
    for n, slept in enumerate(clock.sleeps, 1):
        base = webhooks.BACKOFF_INITIAL_S * 2 ** (n - 1)
        assert base / 2 <= slept <= base
    assert len(clock.sleeps) == 3


def test_a_dropped_connection_is_retried(receiver, clock):
    receiver.script = ["reset"]
    _, delivery = send(receiver.url, clock)
    assert delivery.delivered and len(delivery.attempts) == 2
    assert delivery.attempts[0].status is None
    assert delivery.attempts[0].error.startswith(("connection dropped", "cannot connect", "ReadError"))


def test_a_4xx_is_a_refusal_and_is_not_retried(receiver, clock):
    receiver.mode = "410"
    _, delivery = send(receiver.url, clock)
    assert not delivery.delivered and len(delivery.attempts) == 1 and clock.sleeps == []
    assert delivery.attempts[0].status == 410
    assert delivery.error == "receiver rejected the delivery (410)"


def test_redirects_are_not_followed(receiver, clock):
    receiver.mode = "redirect"
    _, delivery = send(receiver.url, clock)
    assert not delivery.delivered and [a.status for a in delivery.attempts] == [302]
    assert "does not follow redirects" in delivery.error
    assert [r.path for r in receiver.received] == ["/hooks/kb"]


def test_429_waits_for_retry_after_when_it_fits_the_budget(receiver, clock):
    receiver.script, receiver.retry_after = ["429"], "7"
    _, delivery = send(receiver.url, clock, retry_for_s=60)
    assert delivery.delivered and [a.status for a in delivery.attempts] == [429, 200]
    assert clock.sleeps == [7.0]
    receiver.script, receiver.retry_after = ["429"], "3600"
    _, delivery = send(receiver.url, clock, retry_for_s=60)
    assert not delivery.delivered and len(delivery.attempts) == 1
    assert delivery.error.startswith("gave up after 1 attempts") and "429" in delivery.error


def test_a_receiver_that_is_down_is_retried_for_the_bounded_time_then_given_up(clock):
    started = time.monotonic()
    _, delivery = send(f"http://127.0.0.1:{free_port()}/hook", clock, retry_for_s=20)
    assert time.monotonic() - started < 3  # the fake clock did the waiting
    assert not delivery.delivered and len(delivery.attempts) >= 4
    assert all(a.status is None and a.error.startswith("cannot connect") for a in delivery.attempts)
    assert sum(clock.sleeps) <= 20
    assert delivery.error.startswith(f"gave up after {len(delivery.attempts)} attempts")


def test_the_time_bound_holds_with_real_sleeps(receiver):
    receiver.mode = "500"
    message = Message.create("job.failed", JOB, SECRET)
    started = time.monotonic()
    delivery = deliver(receiver.url, message, timeout_s=2, retry_for_s=1.0, allow=LOOPBACK)
    elapsed = time.monotonic() - started
    assert not delivery.delivered and len(delivery.attempts) >= 2
    assert elapsed < 1.0 + 0.5  # no new attempt starts past retry_for_s; each one is quick here


def test_an_attempt_times_out(receiver, clock):
    receiver.mode, receiver.delay = "slow", 30  # it would answer long after the deadline
    _, delivery = send(receiver.url, clock, timeout_s=0.3, retry_for_s=0)
    [attempt] = delivery.attempts
    assert not delivery.delivered and attempt.error == "timed out waiting for the answer"
    assert 250 <= attempt.latency_ms < 30_000  # it waited for the deadline, not for the answer


def test_attempts_are_recorded_as_json(receiver, clock):
    receiver.script = ["500"]
    receiver.mode, receiver.delay = "slow", 0.2  # the second attempt is answered after 200 ms
    _, delivery = send(receiver.url, clock)
    data = json.loads(json.dumps(delivery.to_json()))
    assert set(data) == {"url", "event", "msg_id", "delivered", "error", "attempts"}
    assert data["delivered"] is True and data["url"] == receiver.url and data["event"] == "job.done"
    first = data["attempts"][0]
    assert set(first) == {"n", "at", "address", "status", "error", "latency_ms"}
    assert first["status"] == 500 and first["latency_ms"] >= 0
    second = data["attempts"][1]
    assert second["status"] == 200 and second["latency_ms"] >= 200  # what the attempt waited, measured
    assert datetime.fromisoformat(first["at"].replace("Z", "+00:00")).tzinfo == UTC


def test_the_request_goes_to_the_checked_address(receiver, clock, monkeypatch):
    """The name resolves once per attempt, in the guard; the connection uses that answer, so
    a DNS answer that changes between the check and the connect is never used."""
    real, calls = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host != "hooks.example":
            return real(host, *args, **kwargs)
        calls.append(host)
        if len(calls) > 1:
            raise socket.gaierror(socket.EAI_NONAME, "rebound")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    _, delivery = send(f"http://hooks.example:{receiver.port}/hooks/kb", clock)
    assert delivery.delivered and calls == ["hooks.example"]
    assert receiver.received[0].headers["Host"] == f"hooks.example:{receiver.port}"


def test_addresses_are_checked_again_before_every_attempt(monkeypatch, clock):
    answers = [socket.gaierror(socket.EAI_AGAIN, "try again"), "10.0.0.5"]

    def resolver(host, *args, **kwargs):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    message = Message.create("job.done", JOB, SECRET)
    delivery = deliver(
        "https://hooks.example/kb",
        message,
        timeout_s=1,
        retry_for_s=60,
        allow=Allow(),
        sleep=clock.sleep,
        clock=clock,
    )
    first, second = delivery.attempts
    assert "cannot resolve hooks.example" in first.error and len(clock.sleeps) == 1  # DNS failure: retried
    assert "resolves to 10.0.0.5" in second.error and second.address is None  # now private: refused, not retried
    assert not delivery.delivered and delivery.error == second.error


def test_the_secret_never_appears_in_records_errors_or_logs(receiver, clock, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.script = ["500", "reset"]
    message, delivery = send(receiver.url, clock)
    key = SECRET.removeprefix("whsec_")
    recorded = json.dumps(delivery.to_json()) + repr(message) + repr(delivery) + caplog.text
    assert delivery.delivered and key not in recorded and SECRET not in recorded


@pytest.mark.parametrize("value", ["not-a-secret", "whsec_%%%", "whsec_" + base64.b64encode(b"short").decode()])
def test_unusable_secrets_are_named_not_shown(monkeypatch, value):
    monkeypatch.setenv("HOOK_SECRET", value)
    with pytest.raises(WebhookError) as info:
        read_secret("HOOK_SECRET")
    assert "HOOK_SECRET" in str(info.value) and "whsec_" in str(info.value) and value not in str(info.value)
    monkeypatch.delenv("HOOK_SECRET")
    with pytest.raises(WebhookError, match="HOOK_SECRET is not set"):
        read_secret("HOOK_SECRET")


# -- notify: from settings to deliveries ------------------------------------------------
def configure(kb_home, receivers: list[tuple[str, str]], extra: str = "") -> None:
    hooks = "".join(
        f'[[webhooks]]\nurl = "{url}"\nsecret_env = "KB_TEST_HOOK_SECRET"\nevents = {events}\n'
        for url, events in receivers
    )
    write_config(kb_home, f'webhooks_allow_hosts = ["127.0.0.1"]\nwebhook_retry_for_s = 1\n{extra}\n{hooks}')


def test_notify_sends_each_event_to_the_receivers_that_asked_for_it(kb_home, receiver, monkeypatch):
    monkeypatch.setenv("KB_TEST_HOOK_SECRET", SECRET)
    other = Receiver(SECRET).start()
    try:
        configure(kb_home, [(receiver.url, '["job.done", "job.failed"]'), (other.url, '["job.failed"]')])
        settings = load_settings()
        done = notify(settings, "job.done", JOB)
        assert [d.url for d in done] == [receiver.url] and done[0].delivered
        failed = notify(settings, "job.failed", JOB)
        assert [d.url for d in failed] == [receiver.url, other.url] and all(d.delivered for d in failed)
        assert failed[0].msg_id == failed[1].msg_id != done[0].msg_id  # one id per event
        assert other.received[0].payload["type"] == "job.failed"
    finally:
        other.stop()


def test_notify_records_what_it_could_not_do_instead_of_raising(kb_home, receiver, monkeypatch):
    monkeypatch.delenv("KB_TEST_HOOK_SECRET", raising=False)
    down = f"http://127.0.0.1:{free_port()}/hook"
    configure(kb_home, [(receiver.url, '["job.done"]'), (down, '["job.done"]')])
    settings = load_settings()
    no_secret = notify(settings, "job.done", JOB, callback_url=receiver.url)
    assert [d.delivered for d in no_secret] == [False, False, False]
    assert "KB_TEST_HOOK_SECRET is not set" in no_secret[0].error and no_secret[0].attempts == []
    assert "webhook_callback_secret_env" in no_secret[2].error
    assert receiver.received == []

    monkeypatch.setenv("KB_TEST_HOOK_SECRET", SECRET)
    monkeypatch.setenv("KB_TEST_CALLBACK_SECRET", SECRET)
    configure(
        kb_home,
        [(receiver.url, '["job.done"]'), (down, '["job.done"]')],
        'webhook_callback_secret_env = "KB_TEST_CALLBACK_SECRET"',
    )
    started = time.monotonic()
    results = notify(load_settings(), "job.done", JOB, callback_url=receiver.url + "/callback")
    assert time.monotonic() - started < 1 + 2  # the dead receiver is bounded and delays no one else
    assert [d.delivered for d in results] == [True, False, True]
    assert results[1].error.startswith("gave up after")
    assert sorted(r.path for r in receiver.received) == ["/hooks/kb", "/hooks/kb/callback"]


@pytest.fixture
def tls_cert(tmp_path):
    """A self-signed certificate for hooks.example (and only that name)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=hooks.example"]
        + ["-addext", "subjectAltName=DNS:hooks.example"],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_https_goes_to_the_checked_address_and_still_verifies_the_name(tls_cert, clock, monkeypatch):
    """The URL's host is replaced by the checked address; TLS must still send the name (SNI)
    and check the certificate against it, not against the address."""
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host in ("hooks.example", "other.example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(certifi, "where", lambda: tls_cert[0])  # trust the test certificate only
    server = Receiver(SECRET, tls=tls_cert).start()
    try:
        _, delivery = send(f"https://hooks.example:{server.port}/hooks/kb", clock)
        assert delivery.delivered and delivery.attempts[0].address == "127.0.0.1"
        assert server.received[0].error is None and server.received[0].headers["Host"] == f"hooks.example:{server.port}"
        _, wrong_name = send(f"https://other.example:{server.port}/hooks/kb", clock, retry_for_s=0)
        assert not wrong_name.delivered and "Hostname mismatch" in wrong_name.attempts[0].error
    finally:
        server.stop()
