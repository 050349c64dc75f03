"""Metrics of a long-lived process, written a second at a time instead of per request.

A search in kb serve takes a few milliseconds; one SQLite transaction (or one Redis round
trip) per request to record it would be a good part of that, and serialise the request
threads on the metrics file. So events wait in memory and a background thread appends them
in one transaction every `flush_s` seconds (sooner when `max_pending` pile up). Reading the
metrics flushes first, so this process's own `kb stats` figures are whole; a process killed
with SIGKILL loses at most the last second's events — metrics, never an answer or a document.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from kb.errors import StoreError
from kb.metrics.store import Event, Metrics


class BufferedMetrics:
    def __init__(self, store: Metrics, flush_s: float = 1.0, max_pending: int = 2000) -> None:
        self._store = store
        self._flush_s = flush_s
        self._max_pending = max_pending
        self._pending: list[Event] = []
        self._lock = threading.Lock()
        self._write = threading.Lock()  # one flush at a time, in event order
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="kb-metrics-flush", daemon=True)
        self._thread.start()

    @property
    def readonly(self) -> bool:
        return self._store.readonly

    def record(self, event: Event) -> None:
        self.record_many([event])

    def record_many(self, events: Sequence[Event]) -> None:
        with self._lock:
            self._pending.extend(events)
            full = len(self._pending) >= self._max_pending
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Writes what is pending now; a store that fails drops those events (metrics never
        fail the work they measure)."""
        with self._write:
            with self._lock:
                events, self._pending = self._pending, []
            if events:
                with contextlib.suppress(StoreError):
                    self._store.record_many(events)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._flush_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()
        self._store.close()

    def events(self, kb: str | None, since: float | None = None) -> list[dict]:
        self.flush()
        return self._store.events(kb, since)

    def attempts(self, kb: str | None, since: float | None = None) -> list[dict]:
        self.flush()
        return self._store.attempts(kb, since)

    def top1_before(self, kb: str | None, ts: float) -> list[float]:
        self.flush()
        return self._store.top1_before(kb, ts)

    def ingest_rate(self, model: str, last: int = 20) -> tuple[float, int] | None:
        self.flush()
        return self._store.ingest_rate(model, last)
