"""The token store on both backends (tests/backends.py): what one instance records, another
reads; secrets are kept as digests; revoked tokens stay listed. And rate limits counted on
Redis are shared by every instance."""

from __future__ import annotations

import time

import pytest

from kb.errors import Conflict, TokenNotFound
from kb.service.auth import Authenticator, Denied, Principal, RateLimits
from kb.tokens import digest, new_token


class _Home:
    """What Authenticator and RateLimits read of a Home: its token store and Redis client."""

    def __init__(self, tokens, state=None) -> None:
        self.tokens, self.state = tokens, state


def test_a_token_recorded_by_one_instance_authenticates_on_another(backend):
    secret, token = new_token("ci", "write", ("notes",), 10, None)
    backend.tokens().add(token)
    other = Authenticator([], _Home(backend.tokens()))
    principal = other.authenticate(b"Bearer " + secret.encode())
    assert principal == Principal("ci", "write", ("notes",), 10)
    assert token.digest == digest(secret) and all(secret not in str(t) for t in backend.tokens().all())
    with pytest.raises(Conflict):
        backend.tokens().add(token)
    with pytest.raises(Denied, match="unknown bearer token"):
        other.authenticate(b"Bearer kb_not-a-token")


def test_revoked_and_expired_tokens_are_refused_and_stay_listed(backend):
    secret, token = new_token("old", "read", (), None, None)
    expired_secret, expired = new_token("brief", "read", (), None, time.time() - 1)
    store = backend.tokens()
    store.add(token)
    store.add(expired)
    assert backend.tokens().revoke("old").revoked_at is not None
    auth = Authenticator([], _Home(backend.tokens()))
    with pytest.raises(Denied, match="revoked"):
        auth.authenticate(b"Bearer " + secret.encode())
    with pytest.raises(Denied, match="expired"):
        auth.authenticate(b"Bearer " + expired_secret.encode())
    assert auth.required and [t.name for t in store.all()] == ["brief", "old"]
    with pytest.raises(TokenNotFound):
        store.revoke("nope")


def test_rate_limits_on_redis_count_across_instances(redis_backend):
    instances = [RateLimits(_Home(None, redis_backend.client())) for _ in range(2)]
    for attempt in range(3):  # a run that a minute's boundary splits counts in two windows: run it again
        limited = Principal(f"busy-{attempt}", "read", (), 4)
        window = int(time.time() // 60)
        admitted = [instances[i % 2].admit(limited) is None for i in range(6)]
        if int(time.time() // 60) == window:
            break
    assert admitted == [True] * 4 + [False] * 2  # four a minute, whichever instance counted them
