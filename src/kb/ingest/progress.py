"""Progress by work: the ETA of an ingest comes from bytes done, not files done.

Counting files makes one 2,000-page PDF among a thousand notes look like 0.1% of the run,
so the ETA after the notes says "a second" for what takes an hour. The pipeline reports
the bytes of the files it must read (`planned`) and how much of them each step finished
(`worked`: a skipped or failed file at once, a file being embedded batch by batch), and
the meter projects the rate so far over what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class WorkMeter:
    """Implements the pipeline's Progress protocol; a display reads its figures."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.files_total = 0
        self.files_done = 0
        self.chunks = 0
        self.work_total: int | None = None  # None until the stat pass is done
        self.work_done = 0.0
        self.current = ""
        self._began: float | None = None  # when work started, so the stat pass does not count

    def start(self, total_files: int) -> None:
        self.files_total = total_files

    def planned(self, work_bytes: int) -> None:
        self.work_total = work_bytes
        self._began = self._clock()

    def advance(self, path: str, chunks: int) -> None:
        self.files_done += 1
        self.current = path

    def embedded(self, chunks: int) -> None:
        self.chunks += chunks

    def worked(self, work_bytes: float) -> None:
        self.work_done += work_bytes

    def finish(self) -> None: ...

    @property
    def fraction(self) -> float | None:
        if self.work_total is None:
            return None
        return 1.0 if self.work_total == 0 else min(1.0, self.work_done / self.work_total)

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far, or None before any work is done."""
        if self._began is None or self.work_total is None or self.work_done <= 0:
            return None
        elapsed = self._clock() - self._began
        left = max(0.0, self.work_total - self.work_done)
        return elapsed * left / self.work_done


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA –"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"ETA {h}:{m:02d}:{s:02d}" if h else f"ETA {m}:{s:02d}"
