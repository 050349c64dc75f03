"""Keeping a folder in sync: which changes matter, and waiting until they settle.

watchfiles reports changes as they happen, and a file being written (a download, an
editor's slow save, a copy of a big PDF) reports many. Before a batch is applied each
changed file must hold its size and mtime for a quiet interval, so a file is not read
half-way; one still changing after `patience` is held back — neither read nor removed —
and looked at again with the next batch.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from kb.errors import IngestError
from kb.ingest.readers import reader_for

SETTLE_S = 1.0  # a changed file is read once its size and mtime held this long
PATIENCE_S = 10.0  # longer than this still changing: held back until a later batch
STEP_MS = 200  # watchfiles: a batch closes after this long without a new change…
DEBOUNCE_MS = 2000  # …or after this long in any case
TICK_MS = 1000  # and yields an empty batch this often when idle, so held files are re-checked


def changes(paths: list[Path], stop: threading.Event) -> Iterator[set[str]]:
    """Paths that changed, batch by batch; an empty set when idle for a tick. The first
    batch comes as soon as the watch is set up (at most a tick), so a caller can catch up
    with changes made before it, knowing that later ones will be reported."""
    import watchfiles

    try:
        yield from _watch(watchfiles, paths, stop)
    except OSError as exc:  # a folder gone meanwhile, the system's limit of watches reached
        raise IngestError(
            f"cannot watch {', '.join(map(str, paths))} ({exc}); if the limit of watches is reached, raise "
            "fs.inotify.max_user_watches or watch a smaller folder"
        ) from exc


def _watch(watchfiles, paths: list[Path], stop: threading.Event) -> Iterator[set[str]]:
    for batch in watchfiles.watch(
        *paths,
        watch_filter=None,  # discovery's filters decide; a deleted .git folder still matters to nobody
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop,
        rust_timeout=TICK_MS,
        yield_on_timeout=True,
        raise_interrupt=False,
    ):
        yield {path for _, path in batch}


def relevant(path: str, roots: list[Path], hidden: bool, ignore: Path) -> bool:
    """Whether a change can matter to the ingest: files kb reads, folders (a folder moved
    in or out), anything gone. Hidden entries only with `hidden`; never kb's own files."""
    p = Path(path)
    if p == ignore or ignore in p.parents:
        return False
    if not hidden and any(_hidden_under(p, root) for root in roots):
        return False
    if not os.path.lexists(path):
        return True
    return p.is_dir() or reader_for(p) is not None


def _hidden_under(p: Path, root: Path) -> bool:
    return (p == root or root in p.parents) and any(part.startswith(".") for part in p.relative_to(root).parts)


def _state(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # gone (or unreadable): nothing to wait for
    return st.st_size, st.st_mtime_ns


def settle(paths: set[str], stop: threading.Event, quiet: float = SETTLE_S, patience: float = PATIENCE_S) -> set[str]:
    """Waits until every path's size and mtime held still for `quiet` seconds; returns the
    paths still changing after `patience` (or when `stop` is set)."""
    seen = {p: _state(p) for p in paths}
    unsettled = set(paths)
    deadline = time.monotonic() + patience
    while unsettled and not stop.wait(quiet):
        now = {p: _state(p) for p in unsettled}
        unsettled = {p for p in unsettled if now[p] != seen[p]}
        seen.update(now)
        if time.monotonic() >= deadline:
            break
    return unsettled
