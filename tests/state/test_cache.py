"""The answer and query-embedding cache on both backends (tests/backends.py)."""

from __future__ import annotations

import numpy as np
import pytest

from kb import state
from kb.cache import RedisCache, answer_key
from kb.errors import StoreError


def test_values_come_back_as_they_were_stored(backend):
    cache = backend.cache()
    vector = np.arange(8, dtype="float32") / 7
    answer = {"answer": "Bees [1]", "citations": [{"n": 1, "path": "a.md"}], "cost_usd": 0.0001}
    cache.set("qemb:1", vector)
    cache.set(answer_key(q="bees", k=5), answer)
    got = cache.get("qemb:1")
    assert got.dtype == np.float32 and np.array_equal(got, vector)
    assert cache.get(answer_key(q="bees", k=5)) == answer
    assert cache.get("qemb:2") is None


def test_an_entry_one_instance_stored_is_a_hit_for_another(backend):
    first, second = backend.cache(), backend.cache()
    first.set("answer:x", {"answer": "from the first"})
    assert second.get("answer:x") == {"answer": "from the first"}
    second.set("answer:x", {"answer": "from the second"})
    assert first.get("answer:x") == {"answer": "from the second"}


def test_clear_drops_every_entry_and_counts_them(backend):
    cache = backend.cache()
    for i in range(1203):  # more than one SCAN batch on Redis
        cache.set(f"qemb:{i}", i)
    assert backend.cache().clear() == 1203
    assert cache.get("qemb:5") is None
    assert cache.clear() == 0


def test_redis_clear_leaves_keys_that_are_not_kbs_cache(redis_backend):
    cache = redis_backend.cache()
    other = redis_backend.client()
    other.set("someone-elses:key", b"kept")
    other.set(state.key("jobs", "job", "job_1"), b"kept")
    cache.set("answer:a", 1)
    assert cache.clear() == 1
    assert other.get("someone-elses:key") == b"kept" and other.get(state.key("jobs", "job", "job_1")) == b"kept"
    other.close()


def test_redis_entries_expire_after_a_week(redis_backend):
    client = redis_backend.client()
    RedisCache(client).set("answer:a", 1)
    ttl = client.ttl(state.key("cache", "answer:a"))
    assert RedisCache.TTL_S - 60 < ttl <= RedisCache.TTL_S == 7 * 24 * 3600
    client.close()


def test_redis_down_is_a_miss_and_an_unkept_value_then_works_again_on_the_same_client(
    redis_backend, redis_outage, redis_server
):
    cache = redis_backend.cache()
    cache.set("answer:a", "kept before")
    redis_outage.stop()
    assert cache.get("answer:a") is None  # no exception: the question is answered without the cache
    cache.set("answer:b", "lost")
    with pytest.raises(StoreError, match=f"{redis_server.url}.*unreachable"):
        cache.clear()  # clearing was asked for: saying it did not happen matters
    redis_outage.start()
    assert cache.get("answer:a") == "kept before"  # the server persisted it; the client reconnected
    assert cache.get("answer:b") is None
    cache.set("answer:b", "kept now")
    assert cache.get("answer:b") == "kept now"
