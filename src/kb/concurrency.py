"""Small tools that let one object (a knowledge base's access, the home) serve many threads,
and that size those threads to the cores.

`lazy` opens an adapter on first use, once, even when threads race for it (Python 3.12
removed the lock that functools.cached_property had). `Gate` lets any number of
operations run at once and gives `close()` (or a rebuild) the place to itself: it waits
for running operations to finish and holds new ones back meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class lazy(Generic[T]):
    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> lazy[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: object | None, owner: type) -> T | lazy[T]:
        if obj is None:
            return self
        values = obj.__dict__
        # Once built, the value in the instance dict shadows this non-data descriptor.
        lock = values.setdefault("_lazy_lock", threading.RLock())
        with lock:
            if self.name not in values:
                values[self.name] = self.build(obj)
            return values[self.name]


def drop(obj: object, name: str) -> Any:
    """Forgets a `lazy` value (the next use builds it again); returns the old one or None."""
    lock = obj.__dict__.setdefault("_lazy_lock", threading.RLock())
    with lock:
        return obj.__dict__.pop(name, None)


class Gate:
    """Shared entry for operations, exclusive entry for close and rebuild. Re-entrant for a
    thread that already holds it, so an operation may call another."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive: threading.Thread | None = None
        self._waiting = 0
        self._mine = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._mine, "depth", 0)
        if depth or self._exclusive is threading.current_thread():
            self._mine.depth = depth + 1
            try:
                yield
            finally:
                self._mine.depth = depth
            return
        with self._cond:
            while self._exclusive is not None or self._waiting:
                self._cond.wait()
            self._shared += 1
        self._mine.depth = 1
        try:
            yield
        finally:
            self._mine.depth = 0
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.current_thread()
        if self._exclusive is me:
            yield
            return
        if getattr(self._mine, "depth", 0):
            raise RuntimeError("an operation cannot close or rebuild the knowledge base it is running in")
        with self._cond:
            self._waiting += 1
            while self._exclusive is not None or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = me
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = None
                self._cond.notify_all()


def cpu_threads() -> int:
    """Threads for one forward pass: the CPUs this process may run on (taskset, cpusets),
    or fewer where OMP_NUM_THREADS says so. torch and NumPy's BLAS honour that variable;
    OpenVINO (TBB) and ONNX Runtime do not read it, so kb does."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(available, int(limit)) if limit.isdigit() and int(limit) > 0 else available


def process_share(processes: int) -> int:
    """Encoder threads for each of `processes` processes that share this one's cores (kb
    serve --workers, the instances of a one-machine cluster): an encoder with threads for
    every core in each only makes them wait for each other (docs/benchmarks.md)."""
    return max(1, cpu_threads() // processes)
