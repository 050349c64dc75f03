"""One KnowledgeBase shared by many threads while another process writes (hash embedder;
real Chroma and SQLite): no errors, and every result is consistent with a state some
commit produced; a long-lived reader sees what other processes ingest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from kb import KnowledgeBase
from kb.config import load_settings
from tests.conftest import run_kb

HASH = {"KB_MODEL": "hash", "KB_INGEST_BATCH": "4"}
VERSIONS = ("first", "second")


def _write(folder: Path, name: str, version: str) -> None:
    body = "\n\n".join(
        f"{name} {version} paragraph {j}: the {version} survey counted frames, brood and stores in hive {name}."
        for j in range(12)
    )
    (folder / f"{name}.md").write_text(f"# {name}\n\n{body}\n")


def _texts(folder: Path) -> dict[str, set[str]]:
    """Every version each file can have, as text: hits must come from one of them."""
    out: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.md")):
        versions = set()
        for version in VERSIONS:
            _write(folder, path.stem, version)
            versions.add(path.read_text())
        out[str(path)] = versions
    return out


CHURN = textwrap.dedent(
    """
    import sys, time, shutil
    from pathlib import Path
    from kb.config import load_settings
    from kb import KnowledgeBase
    sys.path.insert(0, sys.argv[3])
    from tests.reliability.test_threads import _write

    churn, until = Path(sys.argv[1]), time.time() + float(sys.argv[2])
    kb = KnowledgeBase(load_settings())
    rounds = 0
    while time.time() < until:
        version = ("first", "second")[rounds % 2]
        for path in sorted(churn.glob("*.md"))[: 3]:
            _write(churn, path.stem, version)
        kb.ingest([churn])            # updates three files
        kb.remove(churn / "c5.md")    # and removes one...
        kb.ingest([churn])            # ...which the next ingest adds back
        rounds += 1
    print(rounds)
    """
)


def test_eight_threads_share_one_kb_while_another_process_writes_hash_embedder(tmp_path, kb_home, monkeypatch):
    for key, value in HASH.items():
        monkeypatch.setenv(key, value)
    stable, churn = tmp_path / "stable", tmp_path / "churn"
    stable.mkdir()
    churn.mkdir()
    for i in range(4):
        _write(stable, f"s{i}", "first")
    for i in range(8):
        _write(churn, f"c{i}", "first")
    allowed = {**_texts(stable), **_texts(churn)}
    for i in range(8):
        _write(churn, f"c{i}", "first")
    assert run_kb("ingest", stable, env=HASH).code == 0
    assert run_kb("ingest", churn, env=HASH).code == 0

    kb = KnowledgeBase(load_settings())
    seconds = 25
    writer = subprocess.Popen(
        [sys.executable, "-c", CHURN, str(churn), str(seconds), str(Path(__file__).parents[2])],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []
    counts = {"search": 0, "ask": 0, "stats": 0, "list": 0}
    lock = threading.Lock()

    def check_hits(hits) -> None:
        for hit in hits:
            assert hit.source in allowed, hit.source
            assert any(hit.text in version for version in allowed[hit.source]), (hit.source, hit.text[:80])

    def work(kind: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if kind == "search":
                    check_hits(kb.search("frames and brood in the hive", k=8))
                elif kind == "ask":
                    answer = kb.ask("What did the survey count?", use_cache=False)
                    assert answer.answer and answer.provider == "extractive"
                    check_hits([c.hit for c in answer.citations])
                elif kind == "stats":
                    assert kb.stats()["requests"]
                else:
                    docs = kb.documents()
                    assert {d.source for d in docs} <= set(allowed)
                    assert all(d.chunks > 0 for d in docs)
            except Exception as exc:  # collected, so one failure does not hide the others
                with lock:
                    errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            else:
                with lock:
                    counts[kind] += 1

    threads = [threading.Thread(target=work, args=(kind,)) for kind in ("search", "ask", "stats", "list") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err[-2000:]
    assert int(out.strip()) >= 2, "the other process barely wrote"
    assert errors == [], errors[:10]
    assert all(n >= 5 for n in counts.values()), counts

    # Once the writer is done, this same long-lived instance sees exactly what it committed.
    final = {d.source: d.chunks for d in kb.documents()}
    assert set(final) == set(allowed)
    hits = kb.search(f"c0 {VERSIONS[0]} survey", k=50)
    assert {h.source for h in hits} & {str(churn / f"c{i}.md") for i in range(8)}
    kb.close()


def test_a_long_lived_reader_sees_what_another_process_ingests_hash_embedder(tmp_path, kb_home, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nApples are red and grow on trees.\n")
    assert run_kb("ingest", docs, env={"KB_MODEL": "hash"}).code == 0
    kb = KnowledgeBase(load_settings())
    assert [h.source for h in kb.search("apples", k=5)] == [str(docs / "a.md")]
    (docs / "z.md").write_text("# Z\n\nZucchini grow in the summer garden.\n")
    assert run_kb("ingest", docs, env={"KB_MODEL": "hash"}).code == 0
    hits = kb.search("zucchini summer garden", k=5)
    assert hits and hits[0].source == str(docs / "z.md")
    assert run_kb("remove", docs / "z.md", env={"KB_MODEL": "hash"}).code == 0
    assert all(h.source != str(docs / "z.md") for h in kb.search("zucchini summer garden", k=5))
    kb.close()


def test_closing_one_kb_leaves_another_in_the_same_process_working_hash_embedder(tmp_path, kb_home, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    (tmp_path / "a.md").write_text("# A\n\nApples are red.\n")
    first, second = (KnowledgeBase(load_settings(kb=name)) for name in ("one", "two"))
    for kb in (first, second):
        kb.ingest([tmp_path / "a.md"])
        assert kb.search("apples")
    first.close()
    assert second.search("apples")
    second.close()


def test_kb_never_changes_the_process_environment(tmp_path):
    import sentence_transformers  # noqa: F401 - torch and transformers set variables of their own on import

    from kb.embedding import model_dir, model_id
    from kb.embedding.sentence import SentenceTransformerEmbedder

    settings = load_settings()
    before = dict(os.environ)
    SentenceTransformerEmbedder(model_dir(settings), model_id(settings), "float32").embed(["bees make honey"])
    assert dict(os.environ) == before


def test_close_waits_for_running_operations_and_later_ones_reopen_hash_embedder(tmp_path, kb_home, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    (tmp_path / "a.md").write_text("# A\n\n" + "\n\n".join(f"Apples {i} are red and sweet." for i in range(40)))
    kb = KnowledgeBase(load_settings())
    kb.ingest([tmp_path])
    errors: list[str] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                assert kb.search("red apples", k=3)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(10):
        time.sleep(0.05)
        kb.close()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert errors == [], errors[:5]
    assert kb.search("red apples", k=3)

    # One search held inside the store's query: close() waits for it, then the next reopens.
    inside, release, order = threading.Event(), threading.Event(), []
    expected = len(kb.search("red apples", k=3))
    store = kb.access.store
    real_nearest = store.nearest

    def held_nearest(vector, n, only=None):
        inside.set()
        assert release.wait(60)
        order.append("search done")
        return real_nearest(vector, n, only)

    store.nearest = held_nearest
    searching = threading.Thread(target=lambda: order.append(len(kb.search("red apples", k=3))))
    searching.start()
    assert inside.wait(60)
    closing = threading.Thread(target=lambda: (kb.close(), order.append("closed")))
    closing.start()
    gate = kb.access._gate
    deadline = time.monotonic() + 60
    while gate._waiting == 0:  # close() is waiting for the search, not past it
        assert time.monotonic() < deadline and closing.is_alive()
        time.sleep(0.001)
    assert order == []
    release.set()
    searching.join(60)
    closing.join(60)
    assert order == ["search done", expected, "closed"]  # the search finished, whole, before the close
    assert kb.access.store is not store and kb.search("red apples", k=3)
