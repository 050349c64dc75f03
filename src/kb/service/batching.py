"""Requests that arrive together, answered by one call of the core.

A search in kb serve costs milliseconds, and a good part of them went to handing each
request to a worker thread and back, and to encoding its query alone. So the searches of
one knowledge base with the same options (and the texts of /v1/embeddings) queue up on the
event loop: when no call of their kind is running, the first goes at once, with whatever
is pending; those that arrive meanwhile form the next call, made by one worker thread for
all of them, which encodes their queries in one batch. Alone, a request pays one task
switch for this; under load, calls grow by themselves (as embedding/batching.py does for
threads, without their wake-ups).

A call's error goes to every request of that call; callers validate their own input first,
so that one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

Call = Callable[[list[Any]], Sequence[Any]]
Run = Callable[[Call, list[Any]], Awaitable[Sequence[Any]]]  # runs a call on a worker thread


class _Batch:
    def __init__(self) -> None:
        self.pending: list[tuple[list[Any], asyncio.Future[list[Any]]]] = []
        self.running = False  # one call at a time per key: two in flight were measured slower


class Batcher:
    def __init__(self, run: Run, max_items: int = 64, enabled: bool = True) -> None:
        self._run = run
        self._enabled = enabled  # off (serve.micro_batch = false): each request its own call
        self._max = max_items
        self._batches: dict[Hashable, _Batch] = {}
        self.calls = 0  # calls made and items they carried: the batch sizes reached, in /metrics
        self.items = 0

    async def submit(self, key: Hashable, items: Sequence[Any], call: Call) -> list[Any]:
        """`call(items)`'s results for these items, from a call shared with the requests of
        the same `key` that wait with them. `call` must answer item for item, in order."""
        if not self._enabled:
            return list(await self._run(call, list(items)))
        batch = self._batches.setdefault(key, _Batch())
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        batch.pending.append((list(items), future))
        if not batch.running:
            batch.running = True
            asyncio.get_running_loop().create_task(self._drain(key, batch, call))
        return await future

    def _take(self, batch: _Batch) -> list[tuple[list[Any], asyncio.Future[list[Any]]]]:
        """Whole requests, oldest first, up to max_items (at least one); cancelled ones dropped."""
        taken: list[tuple[list[Any], asyncio.Future[list[Any]]]] = []
        size = 0
        while batch.pending and (not taken or size + len(batch.pending[0][0]) <= self._max):
            items, future = batch.pending.pop(0)
            if future.done():  # its client went away
                continue
            taken.append((items, future))
            size += len(items)
        return taken

    async def _drain(self, key: Hashable, batch: _Batch, call: Call) -> None:
        try:
            while batch.pending:
                taken = self._take(batch)
                if not taken:
                    continue
                everything = [item for items, _ in taken for item in items]
                self.calls += 1
                self.items += len(everything)
                try:
                    results = await self._run(call, everything)
                except Exception as exc:  # every request of this call sees the call's error
                    for _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for items, future in taken:
                    if not future.done():
                        future.set_result(list(results[start : start + len(items)]))
                    start += len(items)
        finally:
            batch.running = False
            if not batch.pending:
                self._batches.pop(key, None)
