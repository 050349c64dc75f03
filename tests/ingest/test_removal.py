"""A re-ingest removes only documents whose files are gone; filters narrow what is read,
never what is kept; --prune mirrors the filtered view and lists what it removes (hash
embedder, real Chroma and SQLite)."""

from __future__ import annotations

import os

from kb import IngestScope
from tests.conftest import run_kb

HASH = {"KB_MODEL": "hash"}


def _docs(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / ".hidden").mkdir()
    (docs / "a.md").write_text("# A\n\nApples are red.\n")
    (docs / "b.txt").write_text("Bananas are yellow.\n")
    (docs / "sub" / "c.md").write_text("# C\n\nCherries are dark.\n")
    (docs / ".hidden" / "d.md").write_text("# D\n\nDates are sweet.\n")
    return docs


def _names(kb) -> list[str]:
    return sorted(os.path.basename(d.source) for d in kb.documents())


def test_filters_narrow_what_is_read_never_what_is_kept_hash_embedder(tmp_path, make_kb):
    docs = _docs(tmp_path)
    kb = make_kb(model="hash")
    kb.ingest(IngestScope.of([docs], hidden=True))
    assert _names(kb) == ["a.md", "b.txt", "c.md", "d.md"]
    for options in ({"include": ["*.md"]}, {"exclude": ["sub"]}, {"hidden": False}, {"include": ["nothing*"]}):
        report = kb.ingest(IngestScope.of([docs], **options))
        assert (report.removed, report.removed_sources) == (0, []), options
        assert _names(kb) == ["a.md", "b.txt", "c.md", "d.md"], options


def test_only_files_that_are_gone_are_removed_hash_embedder(tmp_path, make_kb):
    docs = _docs(tmp_path)
    kb = make_kb(model="hash")
    kb.ingest([docs])
    (docs / "b.txt").unlink()
    report = kb.ingest(IngestScope.of([docs], include=["*.md"]))
    assert report.removed_sources == [str(docs / "b.txt")]
    assert _names(kb) == ["a.md", "c.md"]
    assert kb.search("bananas", k=3) == [] or all("b.txt" not in h.source for h in kb.search("bananas", k=3))


def test_prune_mirrors_the_filtered_view_and_lists_what_it_removes_hash_embedder(tmp_path, make_kb):
    docs = _docs(tmp_path)
    kb = make_kb(model="hash")
    kb.ingest(IngestScope.of([docs], hidden=True))
    report = kb.ingest(IngestScope.of([docs], include=["*.md"], exclude=["sub"], prune=True))
    assert sorted(report.removed_sources) == [
        str(docs / ".hidden" / "d.md"),
        str(docs / "b.txt"),
        str(docs / "sub" / "c.md"),
    ]
    assert _names(kb) == ["a.md"]


def test_cli_prune_prints_each_removed_document_hash_embedder(tmp_path, kb_home):
    docs = _docs(tmp_path)
    assert run_kb("ingest", docs, env=HASH).code == 0
    res = run_kb("ingest", docs, "--include", "*.md", "--prune", env=HASH)
    assert res.code == 0
    assert "1 removed" in res.out and f"removed: {docs / 'b.txt'}" in res.err


def test_a_folder_that_cannot_be_listed_keeps_its_documents_hash_embedder(tmp_path, kb_home):
    docs = _docs(tmp_path)
    assert run_kb("ingest", docs, env=HASH).code == 0
    (docs / "sub").chmod(0o000)
    try:
        for extra in ([], ["--prune"]):
            res = run_kb("ingest", docs, *extra, "--json", env=HASH, as_user=True)
            report = res.json()
            assert any(f["path"] == str(docs / "sub") for f in report["failed"]), report
            assert report["removed_sources"] == [], (extra, report)
    finally:
        (docs / "sub").chmod(0o755)
    listed = [d["source"] for d in run_kb("list", "--json", env=HASH).ndjson()]
    assert str(docs / "sub" / "c.md") in listed
