"""`kb ingest --watch` as a real subprocess on real Chroma and SQLite, with the
HashEmbedder test double (KB_MODEL=hash) at the model seam."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from kb.store.guard import MARKER
from tests.conftest import run_kb


class Watching:
    """`kb ingest --watch --json DIR`, its stdout read line by line on a thread."""

    def __init__(self, folder, *extra: str, env: dict | None = None) -> None:
        env = dict(os.environ, KB_MODEL="hash", **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kb", "ingest", "--watch", "--json", *extra, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, timeout: float = 20.0) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"no output within {timeout}s; stderr: {self.proc.stderr.read()}") from None

    def quiet(self, seconds: float) -> None:
        """Asserts that no batch line arrives for `seconds`."""
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected output: {line}")

    def stop(self, sig=signal.SIGINT, timeout: float = 5.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started


@pytest.fixture
def watched(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "first.md").write_text("# First\n\nThe first note is about apples.\n")
    procs: list[Watching] = []

    def start(*extra: str, env: dict | None = None) -> Watching:
        w = Watching(folder, *extra, env=env)
        procs.append(w)
        first = w.next()
        assert first["event"] == "ingest" and first["added"] == 1, first
        return w

    yield folder, start
    for w in procs:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def _search(query: str) -> list[dict]:
    r = run_kb("search", "--json", "-k", "10", query, env={"KB_MODEL": "hash"})
    assert r.code == 0, r.err
    return r.ndjson()


def test_hash_embedder_watch_adds_updates_removes_and_stops_on_sigint(watched, kb_home):
    folder, start = watched
    w = start()
    note = folder / "zebra.txt"
    note.write_text("Zebras have black and white stripes.")
    batch = w.next()
    assert (batch["event"], batch["added"], batch["updated"], batch["removed"]) == ("batch", 1, 0, 0)
    assert any(h["text"] == "Zebras have black and white stripes." for h in _search("zebras stripes"))

    note.write_text("Zebras live in herds on the savanna.")
    batch = w.next()
    assert (batch["added"], batch["updated"], batch["removed"]) == (0, 1, 0)
    texts = [h["text"] for h in _search("zebras") if h["source"] == str(note)]
    assert texts == ["Zebras live in herds on the savanna."]

    note.unlink()
    batch = w.next()
    assert (batch["added"], batch["updated"], batch["removed"]) == (0, 0, 1)
    assert batch["removed_sources"] == [str(note)]
    assert all(h["source"] != str(note) for h in _search("zebras"))

    code, took = w.stop(signal.SIGINT)
    assert code == 130 and took < 5
    summary = w.next(timeout=1)
    assert summary == {"event": "stopped", "signal": "SIGINT", "batches": 3, "added": 1, "updated": 1, "removed": 1}
    assert not (kb_home / "kbs" / "default" / MARKER).exists()


def test_hash_embedder_watch_reads_a_slowly_written_file_once_complete(watched):
    folder, start = watched
    w = start("--settle", "5")
    pieces = [f"Part {i} of the slow report says the hive weighed {40 + i} kilograms." for i in range(6)]
    path = folder / "slow.txt"
    with open(path, "w") as f:
        # Pauses fifty times shorter than the settle interval, so even a loaded machine finishes
        # the file before it counts as settled; each longer than watchfiles' step.
        for piece in pieces:
            f.write(piece + " ")
            f.flush()
            time.sleep(0.1)
    batch = w.next()
    assert (batch["added"], batch["updated"]) == (1, 0)
    w.quiet(2.5)  # never a second version: the half-written one was not stored first
    texts = [h["text"] for h in _search("slow report hive") if h["source"] == str(path)]
    assert texts == [" ".join(pieces)]
    code, _ = w.stop(signal.SIGTERM)
    assert code == 0  # a requested shutdown
    assert w.next(timeout=1)["signal"] == "SIGTERM"


def test_hash_embedder_watch_keeps_filters_and_ignores_hidden_and_unsupported_files(watched):
    folder, start = watched
    w = start("--exclude", "drafts")
    (folder / "drafts").mkdir()
    (folder / "drafts" / "wip.md").write_text("Work in progress about giraffes.")
    (folder / ".hidden.md").write_text("A hidden note about okapis.")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    w.quiet(3.0)  # nothing to apply: no line
    (folder / "kept.md").write_text("A kept note about lions.")
    batch = w.next()
    assert (batch["added"], batch["updated"], batch["removed"]) == (1, 0, 0)
    sources = {h["source"] for h in _search("giraffes okapis lions")}
    assert sources <= {str(folder / "kept.md"), str(folder / "first.md")}
    assert w.stop()[0] == 130


def test_hash_embedder_watch_waits_out_another_writer_and_then_applies_the_batch(watched, kb_home):
    from filelock import FileLock

    from kb.locking import LOCK_NAME

    folder, start = watched
    w = start(env={"KB_LOCK_TIMEOUT_S": "0.5"})
    lock = FileLock(str(kb_home / "kbs" / "default" / LOCK_NAME), thread_local=False)
    with lock:  # another writer, for longer than lock_timeout_s
        (folder / "later.md").write_text("Written while another process held the write lock.")
        w.quiet(4.0)
        assert w.proc.poll() is None  # still watching, not failed
    batch = w.next()
    assert (batch["event"], batch["added"]) == ("batch", 1)
    assert w.stop()[0] == 130


def test_hash_embedder_sigint_during_a_batch_lets_it_finish(watched, kb_home):
    folder, start = watched
    w = start("--settle", "0.2")
    marker = kb_home / "kbs" / "default" / MARKER
    paragraphs = [f"Entry {i}: the apiary log notes {i % 13} frames of honey and a calm colony." for i in range(4000)]
    (folder / "big.txt").write_text("\n\n".join(paragraphs))
    deadline = time.monotonic() + 20
    while not marker.exists():  # the batch is writing
        assert time.monotonic() < deadline, "the batch never started"
        time.sleep(0.005)
    w.proc.send_signal(signal.SIGINT)
    batch = w.next(timeout=60)
    assert (batch["event"], batch["added"], batch["failed"]) == ("batch", 1, [])
    assert w.next(timeout=5)["batches"] == 1
    assert w.proc.wait(timeout=5) == 130
    assert not marker.exists()
    done = run_kb("list", "--json", env={"KB_MODEL": "hash"}).ndjson()
    assert {d["source"]: d["chunks"] for d in done}[str(folder / "big.txt")] == batch["chunks_added"]


def test_watching_a_missing_folder_is_a_clear_error_before_anything_is_written(tmp_path, kb_home, cli):
    r = cli("ingest", "--watch", tmp_path / "nope")
    assert r.code == 2 and "--watch:" in r.err and "does not exist" in r.err
    assert not kb_home.exists()
