"""The query-vector cache (disk, Redis or memory) answers only for the text the model saw:
the query prefix is part of it. The hash embedder stands in for the model."""

from __future__ import annotations

import hashlib

import numpy as np

from kb.cache import MemoryCache
from kb.embedding import Prefixed
from kb.embedding.cached import CachedEmbedder
from kb.embedding.hashing import HashEmbedder


def test_a_changed_query_prefix_is_not_answered_from_vectors_cached_under_the_old_one():
    cache = MemoryCache()
    before = CachedEmbedder(Prefixed(HashEmbedder(), "query: "), cache).embed(["winter stores"])
    after = CachedEmbedder(Prefixed(HashEmbedder(), "search_query: "), cache).embed(["winter stores"])
    assert np.allclose(after, HashEmbedder().embed(["search_query: winter stores"]))
    assert not np.allclose(before, after)
    # Without a prefix, the same text is the same key as ever: caches written before stay valid.
    plain = CachedEmbedder(HashEmbedder(), cache)
    assert plain._key("winter stores") == "qemb:" + hashlib.sha256(b"hash\x1fwinter stores").hexdigest()
    assert np.allclose(plain.embed(["winter stores"]), HashEmbedder().embed(["winter stores"]))
