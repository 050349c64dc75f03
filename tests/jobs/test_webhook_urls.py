"""The SSRF guard: a webhook URL whose host resolves to this machine or a private network is
refused unless its host, address or network is in webhooks_allow_hosts; every resolved
address counts; cloud metadata addresses are refused whatever the list says. Only literal
addresses and `localhost` are resolved here (or names, through a monkeypatched resolver),
and nothing is ever sent: these tests only check URLs."""

from __future__ import annotations

import socket

import pytest

from kb.errors import WebhookError
from kb.jobs.webhooks import Allow, check_url

NOTHING = Allow()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://100.64.0.1/hook",  # shared address space (carrier NAT, some cloud metadata)
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 written as one number
        "http://[::1]/hook",
        "http://[::]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[ff02::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
        "http://[::ffff:10.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
        "http://[::7f00:1]/hook",  # IPv4-compatible, deprecated
    ],
)
def test_private_addresses_are_refused_with_what_to_do(url):
    with pytest.raises(WebhookError) as info:
        check_url(url, NOTHING)
    message = str(info.value)
    assert ("non-public address" in message and "webhooks_allow_hosts" in message) or "metadata" in message
    assert not info.value.retryable


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/", "http://[::1]/"]
)
def test_the_deprecated_allow_flag_lets_private_receivers_through(url):
    assert check_url(url, Allow(private=True))


@pytest.mark.parametrize(
    "entries, url",
    [
        (["127.0.0.1"], "http://127.0.0.1:8080/hook"),
        (["127.0.0.0/8"], "http://127.0.0.2/hook"),
        (["10.0.0.0/8"], "http://10.1.2.3/hook"),
        (["10.0.0.0/8"], "http://[::ffff:10.1.2.3]/hook"),  # the same address, IPv4-mapped
        (["::1"], "http://[::1]/hook"),
        (["localhost"], "http://localhost/hook"),  # a name: whatever it resolves to
    ],
)
def test_listed_hosts_addresses_and_networks_are_let_through(entries, url):
    assert check_url(url, Allow.of(entries))


@pytest.mark.parametrize(
    "entries, url",
    [
        (["127.0.0.1"], "http://127.0.0.2/hook"),  # the list names one address, not its neighbours
        (["10.0.0.0/8"], "http://192.168.1.10/hook"),
        (["hooks.internal"], "http://localhost/hook"),
        (["169.254.0.0/16"], "http://169.254.169.254/latest/meta-data/"),  # metadata: never
        (["0.0.0.0/0"], "http://169.254.169.254/"),
    ],
)
def test_everything_else_stays_refused(entries, url):
    with pytest.raises(WebhookError):
        check_url(url, Allow.of(entries))
    with pytest.raises(WebhookError, match="metadata"):
        check_url("http://169.254.169.254/", Allow(private=True))  # the deprecated flag does not open it either


@pytest.mark.parametrize(
    "url, addresses",
    [
        ("http://93.184.216.34/hook", ["93.184.216.34"]),
        ("https://93.184.216.34:8443/hook?x=1", ["93.184.216.34"]),
        ("https://[2606:4700::1111]/hook", ["2606:4700::1111"]),
    ],
)
def test_public_literal_addresses_are_accepted(url, addresses):
    assert check_url(url, NOTHING) == addresses


def test_every_resolved_address_must_be_public(monkeypatch):
    def resolver(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(WebhookError, match=r"hooks\.example resolves to ::1"):
        check_url("https://hooks.example/kb", NOTHING)
    assert check_url("https://hooks.example/kb", Allow.of(["hooks.example"])) == ["93.184.216.34", "::1"]
    assert check_url("https://hooks.example/kb", Allow.of(["::1"])) == ["93.184.216.34", "::1"]


def test_a_failed_look_up_is_retryable(monkeypatch):
    def resolver(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(WebhookError, match=r"cannot resolve nowhere\.example") as info:
        check_url("https://nowhere.example/kb", NOTHING)
    assert info.value.retryable


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://93.184.216.34/hook", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://127.0.0.1:6379/_INFO", "only http:// and https://"),
        ("http:///hook", "has no host"),
        ("https://", "has no host"),
        ("http://[::1/hook", "not a valid URL"),
    ],
)
def test_only_http_urls_with_a_host(url, message):
    with pytest.raises(WebhookError, match=message):
        check_url(url, Allow(private=True))
