"""What makes kb serve fast, held to behaviour: searches that arrive together are answered by
one call of the core (and each exactly as it is alone), a bad request fails alone, a
long-lived process encodes queries with the warm ingest runtime and writes nothing to disk
per search, and metrics reach the store in batches without being lost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import httpx
import numpy as np
import pytest

from kb.cache import MemoryCache
from kb.config import load_settings
from kb.embedding import open_embedder
from kb.library import Library
from kb.metrics.buffer import BufferedMetrics
from kb.metrics.store import Event, MetricsStore
from kb.service.batching import Batcher
from tests.service.processes import Server
from tests.service.test_concurrent import QUERIES


async def _in_thread(call, items):
    return await asyncio.to_thread(call, items)


def test_requests_waiting_together_share_one_call_and_get_their_own_results():
    calls: list[list[int]] = []
    release = threading.Event()

    def call(items):
        calls.append(list(items))
        if len(calls) == 1:
            release.wait(10)  # the first call is slow: the others queue up behind it
        return [i * 10 for i in items]

    async def main():
        batcher = Batcher(_in_thread)
        first = asyncio.create_task(batcher.submit("k", [1], call))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit("k", [n, n + 100], call)) for n in range(2, 7)]
        await asyncio.sleep(0.05)
        release.set()
        return await first, await asyncio.gather(*rest), batcher

    first, rest, batcher = asyncio.run(main())
    assert first == [10]
    assert rest == [[n * 10, (n + 100) * 10] for n in range(2, 7)]
    assert calls == [[1], [2, 102, 3, 103, 4, 104, 5, 105, 6, 106]]
    assert (batcher.calls, batcher.items) == (2, 11)


def test_a_failing_call_fails_its_requests_only():
    release = threading.Event()

    def call(items):
        if items == [0]:
            release.wait(10)
            return [0]
        if -1 in items:
            raise ValueError("bad batch")
        return items

    async def main():
        batcher = Batcher(_in_thread)
        first = asyncio.create_task(batcher.submit("k", [0], call))
        await asyncio.sleep(0.05)
        bad = asyncio.create_task(batcher.submit("k", [-1], call))
        await asyncio.sleep(0.05)
        release.set()
        await first
        later = await batcher.submit("k", [7], call)  # the batcher goes on after an error
        with pytest.raises(ValueError, match="bad batch"):
            await bad
        return later

    assert asyncio.run(main()) == [7]


def test_concurrent_searches_with_one_bad_query_answer_the_others(sample_home, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(sample_home, home)
    server = Server(home, {"KB_MAX_QUESTION_CHARS": "60"}).wait_ready()  # the bad query passes the schema
    try:
        with server.client() as client:
            alone = {q: client.post("/v1/search", json={"query": q, "k": 3}).json() for q in QUERIES}

        async def burst():
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                bodies = [{"query": q, "k": 3} for q in QUERIES * 3] + [{"query": "bees " * 20, "k": 3}]
                return await asyncio.gather(*(client.post("/v1/search", json=b) for b in bodies))

        answers = asyncio.run(burst())
    finally:
        server.stop()
    assert answers[-1].status_code == 400 and answers[-1].json()["error"]["kind"] == "input_error", answers[-1].text
    for query, answer in zip(QUERIES * 3, answers[:-1], strict=True):
        assert answer.status_code == 200
        got = [(h["chunk_id"], round(h["score"], 4)) for h in answer.json()["hits"]]
        assert got == [(h["chunk_id"], round(h["score"], 4)) for h in alone[query]["hits"]]


def test_a_long_lived_library_encodes_queries_as_ingest_does_and_keeps_them_in_memory(sample_kb):
    settings = load_settings()
    library = Library(settings, long_lived=True)
    try:
        encoder = library.home.query_embedder
        assert isinstance(encoder.cache, MemoryCache)
        served = encoder.embed(QUERIES)
        ingest = open_embedder(settings).embed(QUERIES)
        one_shot = open_embedder(settings, for_queries=True).embed(QUERIES)
        assert (served * ingest).sum(1).min() >= 0.999
        assert (served * one_shot).sum(1).min() >= 0.999
        assert not (settings.home / "cache").exists() or library.home.cache.get("anything") is None
    finally:
        library.close()


def test_searches_of_a_long_lived_library_reach_the_metrics_in_batches(sample_kb):
    settings = load_settings()
    metrics_db = settings.home / "metrics.db"

    def searches_on_disk() -> int:
        with sqlite3.connect(metrics_db) as conn:
            return conn.execute("SELECT count(*) FROM events WHERE kind = 'search'").fetchone()[0]

    before = searches_on_disk()
    library = Library(settings, long_lived=True)
    buffered = library.home.metrics
    assert isinstance(buffered, BufferedMetrics)
    buffered._flush_s = 3600  # no timed flush during the test: only reads and close write
    kb = library.kb(None)
    for query in QUERIES:
        kb.search(query, k=3)
    assert searches_on_disk() == before  # nothing written per search
    assert kb.stats()["requests"]["search"] == before + len(QUERIES)  # a read flushes first
    assert searches_on_disk() == before + len(QUERIES)
    kb.search("one more", k=3)
    library.close()
    assert searches_on_disk() == before + len(QUERIES) + 1  # close flushes what is pending


def test_buffered_metrics_append_in_one_transaction_and_survive_a_failing_store(tmp_path):
    store = MetricsStore(tmp_path / "metrics.db")
    buffered = BufferedMetrics(store, flush_s=3600)
    for i in range(50):
        buffered.record(Event("search", "notes", float(i)))
    assert MetricsStore(tmp_path / "metrics.db").events("notes") == []
    assert len(buffered.events("notes")) == 50

    class Broken:
        readonly = False

        def record_many(self, events):
            from kb.errors import StoreError

            raise StoreError("disk full")

        def close(self):
            pass

    failing = BufferedMetrics(Broken(), flush_s=3600)  # type: ignore[arg-type]
    failing.record(Event("search", "notes", 1.0))
    failing.close()  # metrics never fail the work they measure
    buffered.close()


def test_nearest_many_is_nearest_for_each_row(sample_kb):
    store = sample_kb.access.store
    vectors = open_embedder(load_settings(), for_queries=True).embed(QUERIES[:4])
    together = store.nearest_many(np.asarray(vectors), 10)
    assert together == [store.nearest(v, 10) for v in vectors]


def test_metrics_show_the_batch_sizes_reached(sample_home, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(sample_home, home)
    server = Server(home).wait_ready()
    try:
        with server.client() as client:
            for query in QUERIES[:3]:
                assert client.post("/v1/search", json={"query": query}).status_code == 200
            assert client.post("/v1/embeddings", json={"input": ["a", "b"]}).status_code == 200
            text = client.get("/metrics").text
    finally:
        server.stop()
    assert "kb_batched_calls_total 4.0" in text
    assert "kb_batched_items_total 5.0" in text


def _server_processes_env(pid: int) -> list[dict[str, str]]:
    """The environments of uvicorn's server processes under `pid` (not its resource tracker)."""
    from pathlib import Path

    envs = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] != str(pid):
                continue
            raw = (stat.parent / "environ").read_bytes()
            if b"spawn_main" not in (stat.parent / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        envs.append(dict(e.split("=", 1) for e in raw.decode(errors="replace").split("\0") if "=" in e))
    return envs


@pytest.mark.parametrize("user_threads", [None, "3"])
def test_server_processes_share_the_cores_unless_the_user_set_threads(sample_home, tmp_path, monkeypatch, user_threads):
    """`kb serve --workers 2`: each process encodes with its share of the cores (an encoder with
    threads for every core in each made them wait for each other), and answers as one does."""
    import os
    import shutil

    home = tmp_path / "home"
    shutil.copytree(sample_home, home)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = {} if user_threads is None else {"OMP_NUM_THREADS": user_threads}
    server = Server(home, env, ["--workers", "2"]).wait_ready()
    try:
        with server.client() as client:
            answers = [client.post("/v1/search", json={"query": q, "k": 3}) for q in QUERIES]
        children = _server_processes_env(server.pid)
    finally:
        server.stop()
    cores = len(os.sched_getaffinity(0))
    expected = user_threads or str(max(1, cores // 2))
    assert len(children) == 2 and all(e.get("OMP_NUM_THREADS") == expected for e in children), children
    # What the encoders use: no more threads than cores.
    assert f"2 server processes, each encoding with {min(cores, int(expected))} thread" in server.output()
    assert all(a.status_code == 200 and a.json()["hits"] for a in answers)
