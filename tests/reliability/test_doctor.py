"""kb doctor finds and repairs deliberately damaged knowledge bases (real Chroma and
SQLite; hash embedder so that rebuilding takes seconds)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_kb
from tests.reliability.kbstate import snapshot, store_texts
from tests.reliability.test_crash import _WORDS

HASH = {"KB_MODEL": "hash"}


def _corpus(folder: Path, n: int = 12) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        body = "\n\n".join(
            f"Section {j} of note {i}: the colony stored {i * j} kilograms of honey near frame {j}. "
            + "Bees fan the nectar to evaporate water before capping it. " * 6
            for j in range(4)
        )
        (folder / f"note{i:02d}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    return folder


def _doctor(*args: str):
    res = run_kb("doctor", "--json", *args, env=HASH)
    return res.code, json.loads(res.out)


def _collection(home: Path):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        str(home / "kbs" / "default" / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    return client.get_collection("kb_default")


@pytest.fixture
def built(tmp_path, kb_home):
    corpus = _corpus(tmp_path / "docs")
    assert run_kb("ingest", corpus, env=HASH).code == 0
    return corpus


def _same_as_fresh_ingest(tmp_path: Path, kb_home: Path, corpus: Path) -> None:
    reference = tmp_path / "reference"
    assert run_kb("ingest", corpus, env={**HASH, "KB_HOME": str(reference)}).code == 0
    assert snapshot(kb_home, corpus) == snapshot(reference, corpus)


def test_doctor_reports_a_healthy_kb_hash_embedder(built):
    code, report = _doctor()
    assert code == 0 and report["healthy"] and report["problems"] == []
    assert report["documents"] == 12 and report["chunks_in_store"] == report["chunks_in_manifest"] > 12


def test_doctor_repairs_missing_orphan_chunks_and_gone_sources_hash_embedder(tmp_path, kb_home, built):
    col = _collection(kb_home)
    ids = sorted(store_texts(kb_home))
    victim = col.get(ids=ids[:2], include=["metadatas"])["metadatas"][0]["source"]
    col.delete(ids=ids[:2])
    col.add(
        ids=["orphan-1"], embeddings=[[0.05] * 384], documents=["left behind"], metadatas=[{"source": "/nowhere.md"}]
    )
    (built / "note05.md").unlink()
    del col

    code, report = _doctor()
    kinds = sorted({p["kind"] for p in report["problems"]})
    assert code == 1 and kinds == ["missing_chunks", "missing_source", "orphan_chunks"], report
    assert any(p["source"] == victim for p in report["problems"] if p["kind"] == "missing_chunks")

    code, report = _doctor("--repair")
    assert code == 0 and report["healthy"], report
    assert len(report["repaired"]) >= 3
    _same_as_fresh_ingest(tmp_path, kb_home, built)


def _scramble(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "invert":
        data = bytearray(b ^ 0xFF for b in data)
    else:  # random bytes over 2% of the file: seen to segfault Chroma's HNSW loader
        rng = random.Random(2)
        for _ in range(len(data) // 50):
            data[rng.randrange(len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data))


def _big_corpus(folder: Path) -> Path:
    """~1,700 chunks: enough that Chroma keeps a persisted HNSW index for them."""
    rng = random.Random(1)
    folder.mkdir(parents=True)
    for i in range(400):
        (folder / f"n{i}.md").write_text(
            "\n\n".join(f"# S{j}\n\n" + " ".join(rng.choice(_WORDS) for _ in range(150)) + "." for j in range(4))
        )
    return folder


@pytest.fixture(scope="module")
def big_kb(tmp_path_factory) -> tuple[Path, Path]:
    """The big corpus and a KB_HOME holding its uninterrupted ingest, made once: each damage
    starts from a copy, and a repair must give back exactly this."""
    root = tmp_path_factory.mktemp("big-kb")
    corpus, home = _big_corpus(root / "docs"), root / "home"
    assert run_kb("ingest", corpus, env={**HASH, "KB_HOME": str(home)}).code == 0
    return corpus, home


@pytest.mark.parametrize("damage", ["hnsw-flips", "hnsw-invert", "sqlite"])
def test_index_damaged_by_an_interrupted_write_gives_a_clear_error_and_doctor_rebuilds_it_hash_embedder(
    kb_home, big_kb, damage
):
    corpus, fresh = big_kb
    shutil.copytree(fresh, kb_home)
    chroma = kb_home / "kbs" / "default" / "chroma"
    targets = list(chroma.glob("*/data_level0.bin")) if damage.startswith("hnsw") else [chroma / "chroma.sqlite3"]
    assert targets, sorted(p.name for p in chroma.rglob("*"))
    for target in targets:
        _scramble(target, damage.rsplit("-", 1)[-1])
    # What a writer killed mid-write leaves behind (test_crash shows kills leave it).
    (kb_home / "kbs" / "default" / "write.unfinished").write_text("12345")

    search = run_kb("search", "honey", env=HASH)
    # Loading scrambled HNSW files can segfault Chroma; kb must not: it probes them first.
    assert search.code == 1 and "kb doctor --repair" in search.err and "Traceback" not in search.err, search.err

    code, report = _doctor()
    assert code == 1 and [p["kind"] for p in report["problems"]] == ["index"], report

    code, report = _doctor("--repair")
    assert code == 0 and report["healthy"], report
    assert list(chroma.parent.glob("chroma.broken-*")), "the damaged index is kept for inspection"
    assert not (kb_home / "kbs" / "default" / "write.unfinished").exists()
    assert snapshot(kb_home, corpus) == snapshot(fresh, corpus)
    after = run_kb("search", "honey", "--json", env=HASH)
    assert after.code == 0, after.err


def test_doctor_rebuilds_an_unreadable_manifest_from_the_store_hash_embedder(tmp_path, kb_home, built):
    manifest = kb_home / "kbs" / "default" / "manifest.db"
    for extra in manifest.parent.glob("manifest.db-*"):
        extra.unlink()
    manifest.write_bytes(b"this is not a database" * 100)

    code, report = _doctor()
    assert code == 1 and "manifest" in [p["kind"] for p in report["problems"]], report

    code, report = _doctor("--repair")
    assert code == 0 and report["healthy"], report
    _same_as_fresh_ingest(tmp_path, kb_home, built)


def test_doctor_rebuilds_when_both_manifest_and_index_are_damaged_without_loading_the_index_hash_embedder(
    tmp_path, kb_home
):
    corpus = _big_corpus(tmp_path / "docs")
    assert run_kb("ingest", corpus, env=HASH).code == 0
    kb_dir = kb_home / "kbs" / "default"
    for target in (kb_dir / "chroma").glob("*/data_level0.bin"):
        _scramble(target, "flips")  # seen to segfault Chroma's HNSW loader
    for extra in kb_dir.glob("manifest.db-*"):
        extra.unlink()
    (kb_dir / "manifest.db").write_bytes(b"this is not a database" * 100)

    res = run_kb("doctor", "--repair", "--json", env=HASH, timeout=300)
    assert res.code == 0 and "Traceback" not in res.err, (res.code, res.err[-2000:])
    report = json.loads(res.out)
    assert report["healthy"] and report["documents"] == 400, report
    _same_as_fresh_ingest(tmp_path, kb_home, corpus)


def test_doctor_repair_waits_for_a_running_ingest_and_keeps_its_chunks_hash_embedder(built, kb_home):
    """An ingest has stored a batch but not yet recorded it when doctor --repair starts:
    doctor must wait for the write lock before it looks, or it takes the batch for orphans."""
    import subprocess
    import sys
    import threading

    from kb import KnowledgeBase
    from kb.config import load_settings

    (built / "late.md").write_text("# Late\n\nA note written while doctor runs, about propolis and wax.\n")
    kb = KnowledgeBase(load_settings(model="hash"))
    real_store = kb.access.store
    doctor: dict = {}

    class PausingStore:  # the real store; it only holds the ingest still between store and manifest
        def __getattr__(self, name):
            return getattr(real_store, name)

        def add(self, chunks, vectors):
            real_store.add(chunks, vectors)
            proc = subprocess.Popen([sys.executable, "-m", "kb", "doctor", "--repair", "--json"],
                                    env={**os.environ, **HASH}, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
            waiting = threading.Event()

            def watch():
                for line in proc.stderr:
                    if "waiting" in line:
                        waiting.set()

            threading.Thread(target=watch, daemon=True).start()
            assert waiting.wait(60), "doctor never waited for the running ingest"
            doctor["proc"] = proc

    kb.access.__dict__["store"] = PausingStore()
    report = kb.ingest([built])
    assert report.added == 1
    out, _ = doctor["proc"].communicate(timeout=120)
    result = json.loads(out)
    assert doctor["proc"].returncode == 0 and result["healthy"], result
    assert result["repaired"] == []
    late = kb.access.manifest.get(str(built / "late.md"))
    assert late is not None and real_store.existing(late.chunk_ids) == set(late.chunk_ids)
    kb.close()


def test_a_long_lived_process_meets_another_writers_crash_with_a_clear_error_hash_embedder(tmp_path, kb_home):
    """A process that stays open (the service) while another process's write dies half-way:
    its next search loads the index anew, so it probes it first instead of crashing."""
    import sqlite3

    from kb import KnowledgeBase
    from kb.config import load_settings
    from kb.errors import StoreError

    corpus = _big_corpus(tmp_path / "docs")
    assert run_kb("ingest", corpus, env=HASH).code == 0
    kb = KnowledgeBase(load_settings(model="hash"))
    assert kb.search("honey")
    kb_dir = kb_home / "kbs" / "default"
    # What another writer leaves when it is killed after committing part of its work: its
    # mark, an index it was rewriting, and a manifest that moved on.
    for target in (kb_dir / "chroma").glob("*/data_level0.bin"):
        _scramble(target, "flips")
    (kb_dir / "write.unfinished").write_text("999999")
    with sqlite3.connect(kb_dir / "manifest.db") as db:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'content_version'")
    with pytest.raises(StoreError, match="the vector index is damaged") as info:
        kb.search("honey")
    assert info.value.remedy == "repair"  # the CLI says `kb doctor --repair`
    kb.close()
    code, report = _doctor("--repair")
    assert code == 0 and report["healthy"], report
