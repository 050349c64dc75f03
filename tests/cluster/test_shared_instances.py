"""Two kb instances (two KB_HOMEs, two facades) sharing a real `chroma run` and a real
redis-server on loopback: what one writes, caches or learns, the other sees."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest

from kb import KnowledgeBase, SearchFilter, SearchOptions
from kb.config import load_settings
from kb.errors import KbNotFound, LockTimeout
from kb.library import Library
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


def test_a_kb_deleted_through_one_instance_is_not_found_by_a_new_process_with_an_old_mirror(instances, corpus):
    a, b = instances("a"), instances("b")
    a.ingest([corpus])
    assert b.search("varroa mites", k=3)  # B's home now holds a mirror of the KB
    b.close()  # B's process ends; its mirror stays on disk
    a.access.close()
    a.home.storage.delete(a.name)
    later = instances("b")  # a new process on B's home
    for mode in ("hybrid", "keyword", "dense"):
        with pytest.raises(KbNotFound):
            later.search("varroa mites", k=3, options=SearchOptions(mode=mode))
    assert a.name not in a.home.names()  # the search did not list the deleted KB again


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


def _command_names(packed: bytes | str | list) -> list[str]:
    """The command names in what redis-py sends at once (one command, or a pipeline's)."""
    parts = [packed] if isinstance(packed, bytes | str) else packed
    data = b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in parts)
    names, pos = [], 0
    while pos < len(data):  # RESP: *<args>\r\n, then $<size>\r\n<arg>\r\n per argument
        end = data.index(b"\r\n", pos)
        args, pos = int(data[pos + 1 : end]), end + 2
        for n in range(args):
            end = data.index(b"\r\n", pos)
            size, pos = int(data[pos + 1 : end]), end + 2
            if n == 0:
                names.append(data[pos : pos + size].decode().upper())
            pos += size + 2
    return names


class RedisTrips:
    """The Redis round trips of the calling thread, counted at the client's socket: each send
    is one trip (a pipeline's commands go in one send), with the commands it carried."""

    def __init__(self, monkeypatch, redis_url: str) -> None:
        import redis
        from redis.connection import AbstractConnection

        self.trips: list[list[str]] = []
        self._counting = False
        self._thread = threading.get_ident()
        send = AbstractConnection.send_packed_command

        def counted(conn, command, check_health=True):
            names = _command_names(command)
            # A ping of a connection idle for 15 s (health_check_interval) belongs to no search.
            if self._counting and threading.get_ident() == self._thread and names != ["PING"]:
                self.trips.append(names)
            return send(conn, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
        client = redis.Redis.from_url(redis_url)
        self._flags = {name.upper(): info["flags"] for name, info in client.command().items()}
        client.close()

    def during(self, call, *args, **kwargs):
        self.trips, self._counting = [], True
        try:
            return call(*args, **kwargs)
        finally:
            self._counting = False

    @property
    def writes(self) -> list[str]:
        """Commands Redis flags as writing, and scripts, which may write."""
        return [c for trip in self.trips for c in trip
                if "write" in self._flags.get(c, []) or c in ("EVAL", "EVALSHA", "FCALL")]  # fmt: skip


def test_a_search_of_a_serving_instance_makes_at_most_two_redis_round_trips_and_no_write(
    instances, corpus, tmp_path, kb_name, redis_url, monkeypatch
):
    a = instances("a", model="hash")
    a.ingest([corpus])
    library = Library(load_settings(home=str(tmp_path / "b"), kb=kb_name, model="hash"), long_lived=True)
    try:
        b = library.kb(kb_name)
        assert b.search("queen eggs", k=3)  # the first search syncs B's mirror from the shared records
        trips = RedisTrips(monkeypatch, redis_url)
        queries = ["how many eggs does a queen lay", "varroa mites", "when do bees swarm"]
        for mode in ("hybrid", "dense", "keyword"):
            options = SearchOptions(mode=mode)
            assert trips.during(b.search, "how many eggs does a queen lay", k=3, options=options)
            assert len(trips.trips) <= 2 and not trips.writes, (mode, trips.trips)
            assert all(trips.during(b.search_many, queries, options.merged(k=3)))
            assert len(trips.trips) <= 2 and not trips.writes, (mode, trips.trips)
        # What another instance commits is seen by the very next search, not one later.
        (corpus / "propolis.md").write_text("# Propolis\n\nBees seal the hive with propolis, a resin.\n")
        a.ingest([corpus])
        hits = b.search("propolis resin", k=3, options=SearchOptions(mode="keyword"))
        assert hits and hits[0].source == str(corpus / "propolis.md")
        a.access.close()  # as Library.delete does: its adapters go first
        a.home.storage.delete(a.name)
        with pytest.raises(KbNotFound):
            b.search("propolis resin", k=3)
    finally:
        library.close()


def test_the_shared_meta_is_read_once_per_read_operation_and_afresh_by_a_writer(instances, corpus):
    a, b = instances("a", model="hash"), instances("b", model="hash")
    a.ingest([corpus])
    manifest = b.access.manifest
    before = manifest.content_key()  # outside an operation: Redis's now
    with b.access.reading():
        (corpus / "propolis.md").write_text("# Propolis\n\nBees seal the hive with propolis, a resin.\n")
        a.ingest([corpus])
        assert manifest.content_key() == before  # the operation's one read, for all its checks
        with b.access.writing():
            assert manifest.content_key() != before  # a writer reads Redis
        assert manifest.content_key() != before  # ...and so does the rest of the read it was in
    with b.access.reading():  # the next operation reads again
        assert manifest.content_key() == a.access.manifest.content_key() != before
        assert str(corpus / "propolis.md") in {d.source for d in b.documents()}
