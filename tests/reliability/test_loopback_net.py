"""The suite's net (tests/net): pytest and every Python process it starts refuse, before the
system call, to connect or look up anything beyond 127.0.0.0/8 and ::1. 192.0.2.1 is TEST-NET-1
(RFC 5737): nothing answers there, so a test that reached the network would time out or get a
routing error, never the net's own message."""

from __future__ import annotations

import asyncio
import base64
import shutil
import socket
import subprocess
import sys

import pytest

from tests.conftest import SAMPLE, write_config
from tests.service.processes import Server, wait_for

TEST_NET = "192.0.2.1"
NET_MESSAGE = "loopback-only test net: refused"
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_pytest_refuses_a_connect_beyond_loopback_before_sending(loopback_net):
    loopback_net.expect(TEST_NET)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)  # a real non-blocking connect would return EINPROGRESS, not raise
        with pytest.raises(ConnectionRefusedError, match=rf"{NET_MESSAGE} connect to {TEST_NET} port 80"):
            sock.connect((TEST_NET, 80))
    assert len(loopback_net.refusals()) == 1


def test_every_way_out_is_refused_and_loopback_is_not(loopback_net):
    loopback_net.expect(TEST_NET)
    loopback_net.expect("example.org")
    loopback_net.expect("::ffff:192.0.2.1")
    with pytest.raises(ConnectionRefusedError, match=TEST_NET):
        socket.create_connection((TEST_NET, 80), timeout=1)
    with pytest.raises(ConnectionRefusedError, match=r"::ffff:192\.0\.2\.1"):
        socket.create_connection(("::ffff:192.0.2.1", 80), timeout=1)
    with pytest.raises(ConnectionRefusedError, match=r"the name 'example\.org'"):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises(ConnectionRefusedError, match=r"the name 'example\.org'"):
        socket.gethostbyname("example.org")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(ConnectionRefusedError):
        udp.sendto(b"x", (TEST_NET, 53))
    assert len(loopback_net.refusals()) == 5
    # loopback in all its spellings still works
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        for host in ("127.0.0.1", "localhost"):
            socket.create_connection((host, port), timeout=2).close()
    assert socket.getaddrinfo("127.0.0.2", 80) and len(loopback_net.refusals()) == 5


def test_uvloop_connections_are_refused_too(loopback_net):
    uvloop = pytest.importorskip("uvloop")
    loopback_net.expect(TEST_NET)

    async def connect() -> None:
        await asyncio.get_running_loop().create_connection(asyncio.Protocol, TEST_NET, 80)

    loop = uvloop.new_event_loop()
    try:
        with pytest.raises(ConnectionRefusedError, match=TEST_NET):
            loop.run_until_complete(connect())
    finally:
        loop.close()


def test_a_spawned_process_has_the_net(loopback_net):
    loopback_net.expect(TEST_NET)
    code = f"import socket; socket.create_connection(({TEST_NET!r}, 80), timeout=1)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and f"{NET_MESSAGE} connect to {TEST_NET} port 80" in proc.stderr
    assert any(TEST_NET in line for line in loopback_net.refusals())


def test_a_refusal_swallowed_by_a_process_still_fails_the_test(loopback_net):
    code = (
        f"import socket\ntry:\n    socket.create_connection(({TEST_NET!r}, 80), timeout=1)\nexcept OSError:\n    pass\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    assert [TEST_NET in line for line in loopback_net.unexpected()] == [True]  # teardown would fail on it
    loopback_net.expect(TEST_NET)  # (so that this test itself passes)


def test_kb_serve_with_the_override_on_has_its_webhook_refused_by_the_net(tmp_path, loopback_net):
    loopback_net.expect(TEST_NET)
    home, docs = tmp_path / "home", tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    write_config(home, f'webhooks_allow_hosts = ["{TEST_NET}"]\nwebhook_retry_for_s = 1\n\n[[webhooks]]\n'
                       f'url = "http://{TEST_NET}:9/hook"\nsecret_env = "KB_TEST_HOOK_SECRET"\n')  # fmt: skip
    env = {"KB_MODEL": "hash", "KB_TEST_HOOK_SECRET": SECRET, "KB_SERVE_ROOTS": str(docs)}
    server = Server(home, env, ["--worker"]).wait_ready()
    try:
        with server.client() as http:
            job_id = http.post("/v1/ingest", json={"paths": [str(docs)]}).json()["job_id"]
            job = wait_for(lambda: (j := http.get(f"/v1/jobs/{job_id}").json())["deliveries"] and j, 90, "delivery")
    finally:
        server.stop()
    [delivery] = job["deliveries"]
    assert delivery["delivered"] is False and delivery["attempts"]
    assert all(f"{NET_MESSAGE} connect to {TEST_NET} port 9" in a["error"] for a in delivery["attempts"])
    assert any(f"pid {server.pid} connect to {TEST_NET}" in line for line in loopback_net.refusals())
