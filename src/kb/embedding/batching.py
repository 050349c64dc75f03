"""Micro-batching: the queries of searches that arrive together are encoded in one call.

A query is a dozen word pieces, so encoding one is a few small matrix products dominated by
per-call overhead; 32 queries in one batch cost little more than one. There is no batcher
thread and no waiting for company: a caller that finds the encoder idle encodes at once
whatever is pending (its own texts first in line), while callers that arrive meanwhile
queue up and form the next batch, encoded by whichever of them finds the encoder idle
next. Alone, a query pays nothing for this; under load, batches grow by themselves.
(A first version ran a batcher thread that waited 2 ms for company: every query then paid
two thread hand-offs, and one client's searches ran 3x slower; see docs/benchmarks.md.)
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any


class MicroBatchingEmbedder:
    def __init__(self, inner: Any, max_batch: int = 64) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.max_batch = max_batch
        self._pending: list[tuple[list[str], Future]] = []
        self._running = False
        self._cond = threading.Condition()

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    def embed(self, texts: list[str]) -> Any:
        future: Future = Future()
        with self._cond:
            self._pending.append((list(texts), future))
        while True:
            with self._cond:
                while self._running and not future.done():
                    self._cond.wait()
                if future.done():
                    break
                self._running = True
                taken = self._take()
            try:
                self._encode(taken)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
        return future.result()

    def _take(self) -> list[tuple[list[str], Future]]:
        """Whole callers, oldest first, up to max_batch texts (at least one caller): a caller
        with many texts (the extractive answerer's sentences) does not hold up the queries."""
        taken: list[tuple[list[str], Future]] = []
        size = 0
        while self._pending and (not taken or size + len(self._pending[0][0]) <= self.max_batch):
            group = self._pending.pop(0)
            taken.append(group)
            size += len(group[0])
        return taken

    def _encode(self, taken: list[tuple[list[str], Future]]) -> None:
        texts = [t for group, _ in taken for t in group]
        try:
            vectors = self.inner.embed(texts)
        except Exception as exc:  # every caller of this batch sees the encoder's error
            for _, future in taken:
                future.set_exception(exc)
            return
        start = 0
        for group, future in taken:
            future.set_result(vectors[start : start + len(group)])
            start += len(group)
