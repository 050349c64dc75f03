"""`kb ingest --dry-run`: what would change, estimated chunks and time, nothing written.
Real manifest, Chroma and metrics store; the HashEmbedder test double (KB_MODEL=hash) at the
model seam, so the calibration measures that double, not a real encoder."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, run_kb


@pytest.fixture(autouse=True)
def hash_model(monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")


def _tree(root):
    """Every path under `root` with its size, mtime and content hash."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest() if os.path.isfile(path) else ""
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns, digest)
    return out


def _docs(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    return docs


def test_hash_embedder_dry_run_creates_nothing_for_a_new_kb(tmp_path, kb_home, cli):
    docs = _docs(tmp_path)
    before = _tree(docs)
    r = cli("ingest", "--dry-run", "--json", docs)
    assert r.code == 0, r.err
    plan = r.json()
    assert not kb_home.exists()  # no KB folder, manifest, Chroma, lock file or metrics
    assert _tree(docs) == before
    assert plan["kb_exists"] is False
    assert sorted(a["path"] for a in plan["added"]) == sorted(str(p) for p in docs.iterdir())
    assert (plan["updated"], plan["removed"], plan["pruned"], plan["unchanged"]) == ([], [], [], 0)
    assert all(a["chunks_estimate"] > 0 and a["bytes"] > 0 for a in plan["added"])
    assert plan["chunks_estimate"] == sum(a["chunks_estimate"] for a in plan["added"])
    assert plan["work_bytes"] == sum(p.stat().st_size for p in docs.iterdir())
    assert plan["chunks_per_s"] > 0 and plan["seconds_estimate"] > 0
    assert plan["rate_source"] == "calibration"

    text = cli("ingest", "--dry-run", docs)
    assert text.code == 0 and "dry run: nothing written" in text.out and "add: " in text.out
    assert "calibration" in text.out
    assert not kb_home.exists()


def test_hash_embedder_dry_run_of_an_existing_kb_matches_the_ingest_and_modifies_nothing(tmp_path, kb_home, cli):
    docs = _docs(tmp_path)
    assert run_kb("ingest", docs).code == 0  # another process: its SQLite files are closed and checkpointed
    (docs / "new.md").write_text("# New\n\nA new note about queen rearing.\n")
    with open(docs / "glossary.rst", "a") as f:
        f.write("\nDrone: a male honey bee.\n")
    (docs / "swarming.txt").unlink()
    touched = docs / "bee_biology.md"  # only the mtime moves: the content hash says unchanged
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    args = ("--prune", "--exclude", "equipment.html", docs)
    home_before = _tree(kb_home)

    dry = run_kb("ingest", "--dry-run", "--json", *args)
    assert dry.code == 0, dry.err
    plan = dry.json()

    assert _tree(kb_home) == home_before  # not even SQLite's -wal/-shm files appear
    assert plan["kb_exists"] is True
    assert [a["path"] for a in plan["added"]] == [str(docs / "new.md")]
    assert [u["path"] for u in plan["updated"]] == [str(docs / "glossary.rst")]
    assert plan["removed"] == [str(docs / "swarming.txt")]
    assert plan["pruned"] == [str(docs / "equipment.html")]
    assert plan["unchanged"] == 8
    assert plan["chunks_estimate"] > 0 and plan["seconds_estimate"] > 0

    report = cli("ingest", "--json", *args).json()
    assert (report["added"], report["updated"], report["removed"], report["unchanged"]) == (1, 1, 2, 8)
    assert sorted(report["removed_sources"]) == sorted(plan["removed"] + plan["pruned"])


def test_hash_embedder_dry_run_times_by_past_ingests_and_estimates_chunks_closely(tmp_path, cli):
    docs = _docs(tmp_path)
    paragraphs = [
        f"Hive {i} was inspected on day {i % 30}. The colony had {i % 9} frames of brood." for i in range(900)
    ]
    (docs / "log.txt").write_text("\n\n".join(paragraphs))
    plan = cli("ingest", "--dry-run", "--json", docs).json()
    report = cli("ingest", "--json", docs).json()
    assert report["chunks_embedded"] >= 100  # enough for the metrics store to measure a rate
    # Words stand in for the chunker: close, not exact.
    assert abs(plan["chunks_estimate"] - report["chunks_added"]) <= 0.25 * report["chunks_added"]

    (docs / "log.txt").write_text("\n\n".join(reversed(paragraphs)))
    again = cli("ingest", "--dry-run", "--json", docs).json()
    assert again["rate_source"] == "past ingests"
    assert again["chunks_per_s"] > 0 and again["seconds_estimate"] > 0


@pytest.mark.parametrize("other", ["--background", "--watch"])
def test_dry_run_with_background_or_watch_is_refused(tmp_path, cli, kb_home, other):
    r = cli("ingest", "--dry-run", other, tmp_path)
    assert r.code == 2 and "do not go together" in r.err
    assert not kb_home.exists()


def test_a_dry_run_with_an_embedding_service_sends_it_nothing_and_works_when_it_is_down(tmp_path, kb_home, monkeypatch):
    """The fake embeddings service stands at the network seam: a dry run would have sent it
    the files' text to time it (billed by a hosted service), and failed when it was down."""
    from tests.conftest import write_config
    from tests.fake_embeddings import FakeEmbeddings

    monkeypatch.delenv("KB_MODEL")
    docs = _docs(tmp_path)
    fake = FakeEmbeddings().start()
    try:
        write_config(
            kb_home, f'[embedding]\nkind = "openai"\nbase_url = "{fake.url}"\nmodel = "fake"\nmax_retries = 0\n'
        )
        up = run_kb("ingest", "--dry-run", "--json", docs)
        assert up.code == 0, up.err
        assert fake.requests == []
    finally:
        fake.stop()
    down = run_kb("ingest", "--dry-run", docs)  # the same URL, nothing listening now
    assert down.code == 0, down.err
    assert "would add" in down.out and "no time estimate: a dry run does not call the embedding service" in down.out
    plan = up.json()
    assert plan["added"] and plan["chunks_estimate"] > 0 and plan["chunks_per_s"] is None
    assert plan["rate_source"] == "no estimate"
