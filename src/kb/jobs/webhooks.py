"""Webhook deliveries: tell a receiver that a background job ended, the Standard Webhooks way.

    notify(settings, "job.done", job)    every receiver that asked for the event, in parallel
      └── deliver(url, message, …)       one receiver: attempts with backoff; never raises
            └── check_url(url, …)        the SSRF guard, again before every attempt

One event is one `Message`: a JSON body `{"type", "timestamp", "data"}` and one id
(`msg_…`) that stays the same across retries and receivers, so a receiver can drop the
duplicates that at-least-once delivery brings. Each attempt is signed afresh (headers
`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), because
receivers reject a timestamp more than five minutes old and retries may run longer.

SSRF guard: every address the host resolves to must be public, unless the host or the
address is in `webhooks_allow_hosts` (names, addresses or networks: `Allow`). Cloud metadata
addresses are refused whatever the list says. The request then goes to the address that was checked (the URL's
host is replaced by it; the Host header and TLS SNI keep the name, so certificates are
still checked against the name), so a DNS answer that changes between check and connect
cannot send it elsewhere. Redirects are never followed and proxy variables are ignored, for
the same reason.

The secret never leaves `Message.secret` (kept out of its repr): not into errors, logs or
the recorded attempts.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import itertools
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from kb.config.settings import WEBHOOK_EVENTS, Settings
from kb.errors import WebhookError
from kb.version import __version__

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
MIN_SECRET_BYTES = 24  # the Standard Webhooks spec asks for 24 to 64 random bytes
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6 addresses that carry an IPv4 one in their last 32 bits
# Where clouds serve instance credentials (AWS, GCP, Azure; AWS's IPv6; Alibaba): never a receiver.
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
_ALLOW_HINT = (
    "for a receiver on a private network list its host, address or network in webhooks_allow_hosts in config.toml, "
    'e.g. webhooks_allow_hosts = ["hooks.internal", "10.0.0.0/8"]'
)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Allow:
    """The receivers the SSRF guard lets through although they are not public: host names
    (exact, case-insensitive) and addresses or networks. `private` is the deprecated
    `webhooks_allow_private = true`: every non-public address."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    private: bool = False

    @classmethod
    def of(cls, entries: list[str], private: bool = False) -> Allow:
        hosts, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), private)

    @classmethod
    def from_settings(cls, settings: Settings) -> Allow:
        return cls.of(settings.webhooks_allow_hosts, settings.webhooks_allow_private)

    def lets(self, host: str, address: Address) -> bool:
        if self.private or host.lower().rstrip(".") in self.hosts:
            return True
        return any(_within(address, net) for net in self.networks)


def _within(address: Address, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return any(a.version == network.version and a in network for a in _embedded(address))


def _embedded(ip: Address) -> list[Address]:
    """The address and the IPv4 one an IPv6 address may carry (mapped ::ffff:a.b.c.d, 6to4
    2002::/16, NAT64 64:ff9b::/96): Python 3.11's ipaddress does not look inside those."""
    candidates: list[Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += [embedded for embedded in (ip.ipv4_mapped, ip.sixtofour) if embedded is not None]
        if ip in _NAT64:
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return candidates


Verdict = Literal["delivered", "retry", "give_up"]


# -- the SSRF guard -------------------------------------------------------------------
def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise WebhookError(f"webhook URL {url!r} is not a valid URL ({exc}); use http(s)://host/path") from exc
    if parsed.scheme not in ("http", "https"):
        raise WebhookError(f"webhook URL {url!r}: only http:// and https:// URLs are allowed")
    if not parsed.raw_host:
        raise WebhookError(f"webhook URL {url!r} has no host; use http(s)://host/path")
    return parsed


def _internal(ip: Address) -> bool:
    """Whether the address reaches this machine or a non-public network, also when it is an
    IPv4 address wrapped in IPv6."""
    return any(
        not a.is_global  # also catches shared (100.64/10) and documentation ranges
        or a.is_loopback
        or a.is_link_local
        or a.is_private
        or a.is_reserved
        or a.is_multicast
        or a.is_unspecified
        for a in _embedded(ip)
    )


def check_url(url: str, allow: Allow) -> list[str]:
    """Refuse a URL kb must not call (raises WebhookError); return the addresses its host
    resolves to, every one of them checked. A failed DNS look-up is `retryable`."""
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookError(
            f"webhook URL {url}: cannot resolve {host} ({getattr(exc, 'strerror', None) or exc}); check the host name",
            retryable=True,
        ) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(a in _METADATA for a in _embedded(ip)):
            raise WebhookError(f"webhook URL {url}: {host} resolves to {address}, a cloud metadata address, which kb "
                               "never calls")  # fmt: skip
        if _internal(ip) and not allow.lets(host, ip):
            raise WebhookError(
                f"webhook URL {url}: {host} resolves to {address}, a loopback, private or otherwise "
                f"non-public address, which kb refuses so that a URL cannot reach internal services; {_ALLOW_HINT}"
            )
    return addresses


# -- the message ----------------------------------------------------------------------
def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_body(event_type: str, job_json: dict[str, Any]) -> bytes:
    """The JSON body: the event type, when it happened, and the job as GET /v1/jobs/{id} shows it."""
    if event_type not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}; known: {', '.join(WEBHOOK_EVENTS)}")
    event = {"type": event_type, "timestamp": _iso(datetime.now(UTC)), "data": job_json}
    return json.dumps(event, separators=(",", ":")).encode()


def _secret_key(secret: str, source: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; errors name `source`, never the value."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith("whsec_") or len(key) < MIN_SECRET_BYTES:
        raise WebhookError(
            f"{source} is not a usable webhook secret: expected whsec_ followed by at least {MIN_SECRET_BYTES} "
            "base64-encoded random bytes, e.g. the output of "
            "python -c \"import base64,secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
        )
    return key


def read_secret(env_name: str | None) -> str:
    """The secret held by the environment variable `env_name`, checked; WebhookError if unusable."""
    if not env_name:
        raise WebhookError(
            'no signing secret for callback_url deliveries; set webhook_callback_secret_env = "NAME" in '
            "config.toml and put a whsec_... secret in that environment variable"
        )
    secret = os.environ.get(env_name, "")
    if not secret:
        raise WebhookError(f"environment variable {env_name} is not set; put the receiver's whsec_... secret in it")
    _secret_key(secret, f"the value of {env_name}")
    return secret


def secret_problems(settings: Settings) -> list[str]:
    """What is wrong with the configured signing secrets, for the processes that deliver
    (kb worker, kb serve --worker) to say at start-up; never the secrets themselves."""
    names = [(f"webhooks.{i}", hook.secret_env) for i, hook in enumerate(settings.webhooks, 1)]
    if settings.webhook_callback_secret_env:
        names.append(("webhook_callback_secret_env", settings.webhook_callback_secret_env))
    problems = []
    for where, name in names:
        try:
            read_secret(name)
        except WebhookError as exc:
            problems.append(f"{where}: {exc}; deliveries will fail until it is fixed")
    return problems


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, signed by the standardwebhooks package."""
    from standardwebhooks.webhooks import Webhook

    signature = Webhook(_secret_key(secret, "the webhook secret")).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode()
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def new_msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Message:
    """One event for one or more receivers; each attempt signs it again with the current time."""

    id: str
    type: str
    body: bytes
    secret: str = field(repr=False)

    @classmethod
    def create(cls, event_type: str, job_json: dict[str, Any], secret: str) -> Message:
        return cls(new_msg_id(), event_type, event_body(event_type, job_json), secret)

    def headers(self) -> dict[str, str]:
        return sign(self.secret, self.id, int(time.time()), self.body)


# -- delivery -------------------------------------------------------------------------
@dataclass
class DeliveryAttempt:
    n: int
    at: str  # ISO 8601 UTC, when the attempt started
    address: str | None  # the IP address the request went to (None: refused or not resolved)
    status: int | None  # the receiver's HTTP status (None: no answer)
    error: str | None
    latency_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Delivery:
    url: str
    event: str
    msg_id: str
    delivered: bool = False
    error: str | None = None  # why it was not delivered
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        stage = {httpx.ConnectTimeout: "connecting", httpx.WriteTimeout: "sending", httpx.PoolTimeout: "waiting"}
        return f"timed out {stage.get(type(exc), 'waiting for the answer')}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection dropped: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:  # absent, or an HTTP date: plain backoff then
        return None


def _post(client: httpx.Client, url: httpx.URL, address: str, message: Message) -> httpx.Response:
    """POST to `address` while the request still names the host (Host header, TLS SNI)."""
    headers = {"Host": url.netloc.decode("ascii"), "Content-Type": "application/json", **message.headers()}
    request = client.build_request(
        "POST",
        url.copy_with(host=address),
        content=message.body,
        headers=headers,
        extensions={"sni_hostname": url.raw_host.decode("ascii")},
    )
    response = client.send(request, stream=True)  # the body is never read: a receiver cannot flood memory
    response.close()
    return response


def _attempt(
    client: httpx.Client, url: str, message: Message, n: int, allow: Allow
) -> tuple[DeliveryAttempt, Verdict, float | None]:
    at, started = _iso(datetime.now(UTC)), time.perf_counter()
    address: str | None = None

    def record(status: int | None, error: str | None) -> DeliveryAttempt:
        return DeliveryAttempt(n, at, address, status, error, round((time.perf_counter() - started) * 1000, 1))

    try:
        addresses = check_url(url, allow)  # again: DNS answers change
        address = addresses[(n - 1) % len(addresses)]  # rotate, so one dead address cannot take every attempt
        response = _post(client, _parse(url), address, message)
    except WebhookError as exc:
        return record(None, str(exc)), "retry" if exc.retryable else "give_up", None
    except httpx.TransportError as exc:  # refused, reset, dropped, timed out: the receiver may be back soon
        return record(None, _describe(exc)), "retry", None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # e.g. a scoped IPv6 address httpx cannot put in a URL
        return record(None, f"cannot send: {type(exc).__name__}: {exc}"), "give_up", None
    status = response.status_code
    if 200 <= status < 300:
        return record(status, None), "delivered", None
    if status == 429 or status >= 500:
        return record(status, f"receiver answered {status}"), "retry", _retry_after(response)
    if 300 <= status < 400:
        return record(status, f"receiver redirected ({status}); kb does not follow redirects"), "give_up", None
    return record(status, f"receiver rejected the delivery ({status})"), "give_up", None


def _backoff(n: int) -> float:
    """Exponential, with half of it random so that many senders do not retry in step."""
    base = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (n - 1))
    return base / 2 + random.uniform(0, base / 2)


def deliver(
    url: str,
    message: Message,
    *,
    timeout_s: float,
    retry_for_s: float,
    allow: Allow,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """POST `message` to `url` until a 2xx, a refusal (SSRF guard, 3xx, 4xx other than 429),
    or `retry_for_s` is spent. No new attempt starts past it, so the total is `retry_for_s`
    plus at most one attempt, whose steps (connect, send, each read of the answer's head) are
    bounded by `timeout_s` each: httpx has no single deadline per request. Never raises for
    the receiver's failures."""
    delivery = Delivery(url=url, event=message.type, msg_id=message.id)
    started = clock()
    with httpx.Client(
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,  # an environment proxy would connect to addresses we never checked
        headers={"User-Agent": f"kb-webhooks/{__version__}"},
    ) as client:
        for n in itertools.count(1):
            attempt, verdict, retry_after = _attempt(client, url, message, n, allow)
            delivery.attempts.append(attempt)
            log.debug("webhook %s attempt %d to %s: %s", message.id, n, url, attempt.error or attempt.status)
            if verdict == "delivered":
                delivery.delivered = True
                break
            if verdict == "give_up":
                delivery.error = attempt.error
                break
            delay, spent = max(_backoff(n), retry_after or 0.0), clock() - started
            if spent + delay > retry_for_s:
                delivery.error = f"gave up after {n} attempts in {spent:.1f} s; last: {attempt.error}"
                break
            sleep(delay)
    return delivery


def notify(
    settings: Settings,
    event_type: str,
    job_json: dict[str, Any],
    callback_url: str | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Deliver one event to every `[[webhooks]]` entry that lists it and to the job's own
    `callback_url`, in parallel so a dead receiver does not delay the others. Blocks for up
    to `webhook_retry_for_s` (+ one timeout): call it off the job's own thread. Never raises
    for receivers or secrets: those problems are recorded in the returned deliveries."""
    targets: list[tuple[str, str | None]] = [
        (hook.url, hook.secret_env) for hook in settings.webhooks if event_type in hook.events
    ]
    if callback_url:
        targets.append((callback_url, settings.webhook_callback_secret_env))
    if not targets:
        return []
    body, msg_id = event_body(event_type, job_json), new_msg_id()

    def one(target: tuple[str, str | None]) -> Delivery:
        url, secret_env = target
        try:
            message = Message(msg_id, event_type, body, read_secret(secret_env))
            return deliver(
                url,
                message,
                timeout_s=settings.webhook_timeout_s,
                retry_for_s=settings.webhook_retry_for_s,
                allow=Allow.from_settings(settings),
                sleep=sleep,
            )
        except WebhookError as exc:
            return Delivery(url=url, event=event_type, msg_id=msg_id, error=str(exc))
        except Exception as exc:  # a bug here must not fail the job that is being reported
            log.exception("webhook delivery to %s failed unexpectedly", url)
            return Delivery(url=url, event=event_type, msg_id=msg_id, error=f"internal error: {type(exc).__name__}")

    with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="kb-webhook") as pool:
        return list(pool.map(one, targets))
