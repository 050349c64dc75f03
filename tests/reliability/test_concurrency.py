"""Two writers and four readers on one KB at once, as separate kb processes: nothing
hangs, nothing is corrupted, readers keep answering (real Chroma; hash embedder)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

from tests.conftest import run_kb
from tests.reliability.kbstate import snapshot

HASH = {"KB_MODEL": "hash", "KB_INGEST_BATCH": "8"}


def _folder(root: Path, name: str, n: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for i in range(n):
        text = " ".join(
            f"{name} note {i} sentence {j} about brood frames, nectar flow and queen cells." for j in range(60)
        )
        (folder / f"{name}{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder


def _start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kb", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _writer_pid(marker: Path) -> str | None:
    try:
        return marker.read_text() or None
    except FileNotFoundError:
        return None


def test_two_writers_and_four_readers_at_once_hash_embedder(tmp_path, kb_home):
    corpus = tmp_path / "corpus"
    seed, a, b = _folder(corpus, "seed", 5), _folder(corpus, "alpha", 120), _folder(corpus, "beta", 120)
    env = dict(os.environ, **HASH)
    assert run_kb("ingest", seed, env=HASH).code == 0

    writers = [_start(["ingest", str(a), "--json"], env), _start(["ingest", str(b), "--json"], env)]
    reader_cmds = [
        ["search", "queen cells", "--json"],
        ["search", "nectar flow", "-k", "2"],
        ["ask", "What about brood frames?", "--json", "--no-cache"],
        ["ask", "Which note mentions nectar?", "--no-cache"],
    ]
    marker = kb_home / "kbs" / "default" / "write.unfinished"  # holds the running writer's pid
    during_one_write, failures = 0, []
    deadline = time.monotonic() + 240
    while any(w.poll() is None for w in writers):
        assert time.monotonic() < deadline, "writers did not finish: something hangs"
        writer = _writer_pid(marker)
        if writer is None:
            time.sleep(0.02)
            continue
        readers = [_start(cmd, env) for cmd in reader_cmds]
        for cmd, proc in zip(reader_cmds, readers):
            out, err = proc.communicate(timeout=120)
            if proc.returncode != 0 or not out.strip():
                failures.append((cmd, proc.returncode, err[-500:]))
            # A reader that waited for the writer would finish only after that write ended.
            elif _writer_pid(marker) == writer:
                during_one_write += 1
    outs = [w.communicate(timeout=10) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outs
    assert failures == [], failures
    assert during_one_write >= 4, "readers did not complete while a writer held the lock"
    # One writer found the other holding the lock and said it was waiting.
    assert any("waiting" in err for _, err in outs), [err for _, err in outs]

    reference = tmp_path / "reference"
    for folder in (seed, a, b):
        assert run_kb("ingest", folder, env={**HASH, "KB_HOME": str(reference)}).code == 0
    assert snapshot(kb_home, corpus) == snapshot(reference, corpus)
    doctor = run_kb("doctor", env=HASH)
    assert doctor.code == 0, doctor.out + doctor.err


def test_writer_gives_up_with_a_clear_error_after_the_lock_timeout_hash_embedder(tmp_path, kb_home):
    folder = _folder(tmp_path, "notes", 2)
    lock = FileLock(str(kb_home / "kbs" / "default" / "write.lock"))
    (kb_home / "kbs" / "default").mkdir(parents=True)
    with lock:
        started = time.monotonic()
        res = run_kb("ingest", folder, env={**HASH, "KB_LOCK_TIMEOUT_S": "1.5"}, timeout=60)
        waited = time.monotonic() - started
    assert res.code == 1, res.err
    assert "waiting up to 1.5s" in res.err and "still locked by another kb process" in res.err
    assert "Traceback" not in res.err
    assert waited < 30
    assert run_kb("ingest", folder, env=HASH).code == 0  # and works once the lock is free
