"""Shared state on Redis (`state.url`): the one client every distributed adapter uses.

Each part kb instances must share (cache, breakers, metrics, jobs, manifests, write locks)
has an embedded implementation under KB_HOME and one on Redis; this module opens the Redis
side, names its keys, and turns Redis's failures into kb's errors. redis-py reconnects on
the next command after an outage, so an instance recovers when Redis does, without a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kb.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import redis

PREFIX = "kb:"
SCHEMES = ("redis://", "rediss://", "unix://")


def check_url(url: str, setting: str = "state.url") -> str:
    if not url.startswith(SCHEMES):
        raise ConfigError(f"{setting} must be a redis://host:6379/0 URL (or rediss://, unix://), got {url!r}")
    return url


def connect(url: str) -> redis.Redis:
    """A client with short timeouts: an instance whose Redis is gone answers 503 quickly
    instead of hanging its request threads."""
    import redis

    return redis.Redis.from_url(
        check_url(url),
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
        retry_on_timeout=True,
    )


def key(*parts: str) -> str:
    """A namespaced key: kb:<part>:<part>..."""
    return PREFIX + ":".join(parts)


def where(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


@contextmanager
def translated(client: redis.Redis, doing: str) -> Iterator[None]:
    """Redis's connection and server errors as StoreError, naming the server and the fix."""
    import redis

    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreError(
            f"shared state at {where(client)} is unreachable while {doing} ({exc}); start Redis or check state.url"
        ) from exc
    except redis.RedisError as exc:
        raise StoreError(f"shared state at {where(client)} failed while {doing} ({exc})") from exc


def release(client: redis.Redis) -> None:
    """Closes the client's connections. The adapters of one instance share a client, and
    redis-py opens connections again on the next command, so one adapter closing never breaks
    another that is still in use."""
    client.close()


def seconds(reply: tuple[int, int] | list) -> float:
    """The Redis server's TIME reply as a Unix timestamp. Leases, cooldowns and timestamps the
    instances compare are taken from the one clock they share rather than each machine's."""
    return int(reply[0]) + int(reply[1]) / 1_000_000


def text(value: bytes | str) -> str:
    """A Redis reply as text: the client returns bytes, since the cache stores pickles."""
    return value.decode() if isinstance(value, bytes) else value
