"""Two kb instances (two KB_HOMEs, two facades) sharing a real `chroma run` and a real
redis-server on loopback: what one writes, caches or learns, the other sees."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from kb import KnowledgeBase, SearchFilter, SearchOptions
from kb.config import load_settings
from kb.errors import KbNotFound, LockTimeout
from tests.conftest import SAMPLE


@pytest.fixture
def shared(monkeypatch, redis_url, chroma_server):
    monkeypatch.setenv("KB_STORE_URL", chroma_server.url)
    monkeypatch.setenv("KB_STATE_URL", redis_url)
    return {"KB_STORE_URL": chroma_server.url, "KB_STATE_URL": redis_url}


@pytest.fixture
def kb_name() -> str:
    # One Chroma server serves the whole session: each test has its own collection.
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def instances(tmp_path, shared, kb_name):
    opened: list[KnowledgeBase] = []

    def instance(label: str, **overrides) -> KnowledgeBase:
        kb = KnowledgeBase(load_settings(home=str(tmp_path / label), kb=kb_name, **overrides))
        opened.append(kb)
        return kb

    yield instance
    for kb in opened:
        kb.close()
        kb.home.close()


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("bee_biology.md", "swarming.txt", "varroa_mites.html"):
        shutil.copy(SAMPLE / name, folder / name)
    return folder


def test_ingest_through_one_instance_is_found_through_the_other(instances, corpus):
    a, b = instances("a"), instances("b")
    report = a.ingest([corpus])
    assert report.chunks_embedded > 0 and not report.failed
    for mode in ("dense", "keyword", "hybrid"):
        hits = b.search("how many eggs does a queen lay in a day", k=3, options=SearchOptions(mode=mode))
        assert hits, mode
        assert hits[0].source.endswith("bee_biology.md"), (mode, hits[0].source)
    assert {d.source for d in b.documents()} == {str(p) for p in corpus.iterdir()}
    assert b.home.names() == [a.name]
    # B's mirror is its own SQLite under its own home, built from the server's texts.
    assert (b.settings.kb_dir / "manifest.db").is_file()
    assert not (b.settings.kb_dir / "chroma").exists() and not (a.settings.kb_dir / "chroma").exists()


@pytest.mark.parametrize("exact_up_to", [256, 0])  # scopes read exactly; through the server's search among ids
def test_filters_on_another_instance_select_by_the_shared_records(instances, corpus, monkeypatch, exact_up_to):
    from kb.store import collection

    monkeypatch.setattr(collection, "EXACT_UP_TO", exact_up_to)
    a, b = instances("a"), instances("b")
    old = corpus / "swarming.txt"
    os.utime(old, ns=(1_000_000_000 * 10**9, 1_000_000_000 * 10**9))  # 2001
    a.ingest([corpus])
    only = SearchFilter.of(["swarming.txt"])
    for mode in ("dense", "keyword", "hybrid"):
        hits = b.search("how many eggs does a queen lay", k=3, options=SearchOptions(mode=mode, filter=only))
        assert hits and {h.source for h in hits} == {str(old)}, mode
    recent = SearchOptions(filter=SearchFilter.of(since="2010-01-01"))
    assert str(old) not in {h.source for h in b.search("swarm queen cells", k=10, options=recent)}
    ids = b.access.manifest.get(str(old)).chunk_ids
    a.access.store.delete(ids[:1])  # the shared records still list it: a remove half-way
    dense = b.search("swarm", k=10, options=SearchOptions(mode="dense", filter=only))
    assert {h.chunk_id for h in dense} == set(ids[1:])


def test_removal_and_deletion_through_one_instance_reach_the_other(instances, corpus):
    a, b = instances("a"), instances("b")
    a.ingest([corpus])
    assert b.search("varroa mites", k=10, options=SearchOptions(mode="keyword"))
    # A file touched, not changed: A records its new mtime; B's mirror keeps the texts it has.
    touched = corpus / "swarming.txt"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert a.ingest([corpus]).chunks_embedded == 0
    assert {h.source for h in b.search("swarm queen cells", k=10, options=SearchOptions(mode="keyword"))} >= {
        str(touched)
    }
    assert b.access.manifest.get(str(touched)).mtime_ns == touched.stat().st_mtime_ns
    a.remove(corpus / "varroa_mites.html")
    sources = {h.source for h in b.search("varroa mites", k=10, options=SearchOptions(mode="hybrid"))}
    assert str(corpus / "varroa_mites.html") not in sources
    assert len(b.documents()) == 2
    a.access.close()  # as Library.delete does: its adapters go first
    a.home.storage.delete(a.name)
    with pytest.raises(KbNotFound):
        b.search("varroa mites", k=3)


def test_a_kb_deleted_and_built_again_through_one_instance_is_searched_through_the_other(instances, corpus):
    a, b = instances("a"), instances("b")
    a.ingest([corpus])
    assert b.search("varroa mites", k=3, options=SearchOptions(mode="dense"))  # B now holds the collection
    a.access.close()  # as Library.delete does: its adapters go first
    a.home.storage.delete(a.name)
    a.ingest([corpus / "varroa_mites.html"])  # a new collection of the same name
    for mode in ("dense", "hybrid"):
        hits = b.search("varroa mites", k=3, options=SearchOptions(mode=mode))
        assert {h.source for h in hits} == {str(corpus / "varroa_mites.html")}, mode


def test_a_cached_answer_on_one_instance_is_a_hit_on_the_other_until_an_ingest(instances, corpus, tmp_path):
    a, b = instances("a"), instances("b")
    (corpus / "swarming.txt").rename(tmp_path / "swarming.txt")  # added later
    a.ingest([corpus])
    question = "How many eggs does a queen lay in a day?"
    first = a.ask(question)
    assert not first.cached
    assert b.ask(question).cached
    (tmp_path / "swarming.txt").rename(corpus / "swarming.txt")
    a.ingest([corpus])
    # The content version moved on Redis: neither instance serves the old answer.
    assert not b.ask(question).cached
    assert a.ask(question).cached  # ...and the new one is shared again
    # kb stats on either instance counts the asks of both.
    for instance in (a, b):
        stats = instance.stats()
        assert stats["requests"]["ask"] == 4 and stats["requests"]["ingest"] == 2
        assert stats["cache"] == {"asks": 4, "hits": 2, "hit_rate": 0.5}


def test_a_provider_failing_on_one_instance_opens_the_breaker_on_the_other(instances, corpus, tmp_path):
    from tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    config = textwrap.dedent(f"""
        [breaker]
        failure_threshold = 2
        cooldown_s = 600

        [[providers]]
        name = "primary"
        kind = "openai"
        base_url = "{dead}"
        model = "m"
        max_retries = 0
        timeout_s = 2

        [[providers]]
        name = "extractive"
        kind = "extractive"
        """)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "config.toml").write_text(config)
    a, b = instances("a"), instances("b")
    a.ingest([corpus])
    for question in ("What is varroa?", "When do bees swarm?"):
        answer = a.ask(question, use_cache=False)
        assert answer.provider == "extractive"
        assert answer.attempts[0].outcome == "error", answer.attempts
    assert b.home.breakers.states()["primary"]["state"] == "open"
    answer = b.ask("What do drones do?", use_cache=False)
    assert answer.provider == "extractive"
    assert answer.attempts[0].outcome == "skipped", answer.attempts  # B never called the dead endpoint


def test_one_writer_across_instances_and_a_dead_writers_lease_expires(instances, corpus, shared, kb_name, tmp_path):
    a = instances("a")
    b = instances("b", lock_timeout_s=0.5)
    a.ingest([corpus])
    with a.home.storage.write_lock(a.name), pytest.raises(LockTimeout, match="another kb instance"):
        b.ingest([corpus])
    # A writer killed while holding the lock: its lease (2 s here) runs out, B goes ahead.
    holder = textwrap.dedent(f"""
        import sys, time
        from kb.config import load_settings
        from kb.home import Home
        home = Home(load_settings(home={str(tmp_path / "c")!r}, kb={kb_name!r}))
        with home.storage.write_lock({kb_name!r}):
            print("locked", flush=True)
            time.sleep(600)
        """)
    env = {**shared, "KB_STATE_LOCK_LEASE_S": "2"}
    import os

    proc = subprocess.Popen([sys.executable, "-c", holder], env={**os.environ, **env}, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # Within its lock timeout (LockTimeout otherwise), well short of the dead holder's 600 s.
        waiting = instances("d", lock_timeout_s=15)
        report = waiting.ingest([corpus])
        assert not report.failed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_dry_run_and_doctor_on_another_instance_read_the_shared_manifest(instances, corpus):
    a, b = instances("a"), instances("b")
    a.ingest([corpus])
    (corpus / "new.md").write_text("# New\n\nA note about propolis and its uses in the hive.\n")
    plan = b.plan_ingest([corpus])
    assert [item["path"] for item in plan.added] == [str(corpus / "new.md")]
    assert not plan.updated and not plan.removed and plan.unchanged == 3
    report = b.doctor()
    assert report.healthy, report.problems
    assert report.chunks_in_store == report.chunks_in_manifest > 0
    # A chunk lost from the Chroma server is found by any instance, and repaired by re-ingesting.
    record = next(r for r in b.access.manifest.all() if r.source.endswith("swarming.txt"))
    a.access.store.delete(record.chunk_ids[:1])
    report = b.doctor()
    assert [p.kind for p in report.problems] == ["missing_chunks"]
    repaired = b.doctor(repair=True)
    assert repaired.healthy, repaired.problems
    assert a.search("swarm", k=1, options=SearchOptions(mode="dense"))


def test_a_writer_whose_lease_expired_commits_nothing_more(instances, corpus, redis_url):
    import redis

    from kb.state import key

    a, b = instances("a", ingest_batch=4), instances("b")
    client = redis.Redis.from_url(redis_url)

    class LoseTheLeaseAfterOneFile:
        def __init__(self) -> None:
            self.committed: list[str] = []

        def start(self, total_files): ...
        def planned(self, work_bytes): ...
        def embedded(self, chunks): ...
        def worked(self, work_bytes): ...
        def finish(self): ...

        def advance(self, path, chunks):
            self.committed.append(path)
            if len(self.committed) == 1:  # as if Redis had been out of reach past the lease
                client.delete(key("kb", a.name, "write-lock"))

    with pytest.raises(LockTimeout, match="expired while this instance held it"):
        a.ingest([corpus], progress=LoseTheLeaseAfterOneFile())
    assert len(b.documents()) == 1  # the file committed before the loss, and no other
    report = b.ingest([corpus])  # the next writer resumes where that one stopped
    assert not report.failed and len(b.documents()) == 3 and len(a.documents()) == 3
