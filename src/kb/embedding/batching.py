"""Micro-batching: the queries of searches that arrive together are encoded in one call.

A query is a dozen word pieces, so encoding one is a few small matrix products dominated by
per-call overhead; 32 queries in one batch cost little more than one. Callers hand their
texts to a batcher thread and wait; the thread takes whatever has arrived, waits up to
`wait_s` for more (or until `max_batch` texts), encodes them together, and hands each caller
its rows. An error fails the callers of that batch only.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any


class MicroBatchingEmbedder:
    def __init__(self, inner: Any, wait_s: float = 0.002, max_batch: int = 64) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.wait_s = wait_s
        self.max_batch = max_batch
        self.batches = 0  # how many encoder calls were made, for the benchmarks
        self.texts = 0
        self._pending: list[tuple[list[str], Future]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="kb-query-batcher", daemon=True)
        self._thread.start()

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    def embed(self, texts: list[str]) -> Any:
        future: Future = Future()
        with self._cond:
            self._pending.append((list(texts), future))
            self._cond.notify()
        return future.result()

    def _take(self) -> list[tuple[list[str], Future]]:
        with self._cond:
            while not self._pending:
                self._cond.wait()
            deadline = time.monotonic() + self.wait_s
            while sum(len(t) for t, _ in self._pending) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            # Whole callers, up to max_batch texts (at least one caller): a caller with many
            # texts (the extractive answerer's sentences) does not hold up everyone's queries.
            taken: list[tuple[list[str], Future]] = []
            size = 0
            while self._pending and (not taken or size + len(self._pending[0][0]) <= self.max_batch):
                group = self._pending.pop(0)
                taken.append(group)
                size += len(group[0])
            return taken

    def _loop(self) -> None:
        while True:
            taken = self._take()
            texts = [t for group, _ in taken for t in group]
            try:
                vectors = self.inner.embed(texts)
            except Exception as exc:  # every caller of this batch sees the encoder's error
                for _, future in taken:
                    future.set_exception(exc)
                continue
            self.batches += 1
            self.texts += len(texts)
            start = 0
            for group, future in taken:
                future.set_result(vectors[start : start + len(group)])
                start += len(group)
