"""Fifty searches and questions at once against one `kb serve`: every one answered, and
answered as it is when asked alone (real model, so micro-batched query encoding is
exercised with real vectors)."""

from __future__ import annotations

import asyncio
import shutil

import httpx

from kb import KnowledgeBase
from kb.config import load_settings
from tests.service.processes import Server

QUERIES = [
    "how many eggs does a queen lay in a day",
    "when should I treat varroa with oxalic acid",
    "what do bees need to survive winter",
    "how do I render beeswax",
    "signs that a colony is about to swarm",
    "what is American foulbrood",
    "how to light a smoker",
    "what temperature do bees keep the brood at",
    "how much honey to leave for winter",
    "when do drones appear",
]


def test_fifty_concurrent_searches_and_asks_are_all_answered_correctly(tmp_path, sample_home):
    home = tmp_path / "home"
    shutil.copytree(sample_home, home)
    reference = tmp_path / "reference"
    shutil.copytree(home, reference)  # asked alone, one at a time, after the burst
    server = Server(home).wait_ready()
    try:

        async def burst():
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                calls = []
                for i in range(50):
                    q = QUERIES[i % len(QUERIES)]
                    if i % 2:
                        calls.append(client.post("/v1/ask", json={"question": q, "no_cache": True}))
                    else:
                        calls.append(client.post("/v1/search", json={"query": q, "k": 3}))
                return await asyncio.gather(*calls)

        results = asyncio.run(burst())  # on a cold cache: the queries are encoded, concurrently
        kb = KnowledgeBase(load_settings(home=str(reference)))
        try:
            alone = {q: kb.search(q, 3) for q in QUERIES}
            answers = {q: kb.ask(q).answer for q in QUERIES}
        finally:
            kb.close()
        for i, res in enumerate(results):
            q = QUERIES[i % len(QUERIES)]
            assert res.status_code == 200, res.text
            if i % 2:
                assert res.json()["answer"] == answers[q]
            else:
                got = res.json()["hits"]
                assert [h["chunk_id"] for h in got] == [h.chunk_id for h in alone[q]]
                assert all(abs(a["score"] - b.score) < 1e-3 for a, b in zip(got, alone[q]))
    finally:
        server.stop()
