"""Search filters (source globs, types, modified since): applied inside each mode's candidate
search, from the manifest's file records, on KBs from before filters too. Real Chroma and
SQLite; the hash embedder (a fake model, named in each test) since semantics do not matter."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kb import KnowledgeBase, SearchFilter, SearchOptions
from kb.config import load_settings
from kb.errors import InputError, NoMatchingDocuments
from kb.ingest.manifest import FileRecord, SqliteManifest
from kb.locking import write_lock
from kb.retrieval.filtering import scope_of
from tests.retrieval.test_hybrid import _to_old_schema

MODES = ("hybrid", "dense", "keyword")
TARGET = """# Apiary log

## Fences

The fence by the orchard was mended in spring with new posts.

## Mites

A varroa count of three mites after the oxalic treatment in the broodless period.

## Paint

The hive bodies got a fresh coat of white paint before the season.
"""


def _corpus(folder: Path) -> Path:
    """60 notes that match the query better than any part of target.md, which they bury: the
    candidate lists of an unfiltered search (50 each) hold none of target.md's chunks."""
    folder.mkdir(parents=True)
    for i in range(60):
        (folder / f"crowd_{i:02}.md").write_text(
            f"# Varroa treatment {i}\n\nVarroa treatment with oxalic acid, note {i}.\n"
        )
    (folder / "log").mkdir()
    (folder / "log" / "target.md").write_text(TARGET)
    return folder


@pytest.fixture
def crowded(tmp_path, kb_home):
    corpus = _corpus(tmp_path / "corpus")
    kb = KnowledgeBase(load_settings(model="hash"))
    assert not kb.ingest([corpus]).failed
    yield kb, corpus
    kb.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_filter_leaving_one_document_gives_its_best_chunks_hash_embedder(crowded, mode):
    kb, corpus = crowded
    target = str(corpus / "log" / "target.md")
    query = "varroa oxalic treatment"
    unfiltered = kb.search(query, 50, options=SearchOptions(mode=mode))
    assert len(unfiltered) == 50 and target not in {h.source for h in unfiltered}  # filtering after would find nothing

    hits = kb.search(query, 3, options=SearchOptions(mode=mode, filter=SearchFilter.of(["target.md"])))
    assert hits and {h.source for h in hits} == {target}
    assert "varroa count" in hits[0].text  # its best chunk first
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    if mode == "keyword":
        assert len(hits) == 1  # the other chunks hold none of the words
    else:
        assert len(hits) == 3  # every chunk of the document is a dense candidate


def test_globs_types_and_since_select_by_path_suffix_and_mtime(tmp_path):
    day = 86_400 * 1_000_000_000
    files = [
        ("/srv/docs/manuals/pump.pdf", 10 * day),
        ("/srv/docs/manuals/old/valve.PDF", 1 * day),
        ("/srv/docs/notes/pump.md", 10 * day),
        ("/home/ann/notes.txt", 5 * day),
        ("/home/ann/README", 5 * day),
    ]
    manifest = SqliteManifest(tmp_path / "manifest.db")
    manifest.put_many([(FileRecord(f, 1, t, "sha", "c", "m", [f"{f}#1"], [], 0.0), []) for f, t in files])

    def pick(**kw: object) -> list[str]:
        try:
            scope = scope_of(manifest, SearchFilter.of(**kw), "kb")  # type: ignore[arg-type]
        except NoMatchingDocuments:
            return []
        if scope is None:
            return [f for f, _ in files]
        assert sorted(scope.chunk_ids) == sorted(f"{f}#1" for f in scope.sources)
        return sorted(scope.sources, key=[f for f, _ in files].index)

    assert pick(sources=["*.pdf"]) == ["/srv/docs/manuals/pump.pdf"]  # globs are case-sensitive...
    assert pick(types=["PDF"]) == ["/srv/docs/manuals/pump.pdf", "/srv/docs/manuals/old/valve.PDF"]  # ...types not
    assert pick(sources=["manuals"]) == pick(sources=["/srv/docs/manuals"]) == pick(sources=["/srv/docs/manuals/"])
    assert pick(sources=["manuals"]) == ["/srv/docs/manuals/pump.pdf", "/srv/docs/manuals/old/valve.PDF"]
    assert pick(sources=["pump.*"]) == ["/srv/docs/manuals/pump.pdf", "/srv/docs/notes/pump.md"]
    assert pick(sources=["notes/*.md", "README"]) == ["/srv/docs/notes/pump.md", "/home/ann/README"]
    assert pick(sources=["ump.pdf"]) == []  # whole names only
    assert pick(sources=["/srv/*/pump.*"]) == ["/srv/docs/manuals/pump.pdf", "/srv/docs/notes/pump.md"]
    assert pick(sources=["/srv/docs"], types=["md,txt"]) == ["/srv/docs/notes/pump.md"]
    assert pick(since=5 * 86_400) == [f for f, t in files if t >= 5 * day]
    assert pick(types=["md"], since=11 * 86_400) == []
    assert pick(sources=["[!x]ump.md"]) == ["/srv/docs/notes/pump.md"] and pick(sources=["[!p]ump.md"]) == []
    assert pick(sources=["*"]) == [f for f, _ in files] and pick(types=["pdf", "md", "txt", "PDF"]) == pick()[:4]


def test_filters_parse_what_users_type():
    f = SearchFilter.of([" *.md ", "*.md", ""], ["md, .PDF", "txt"], "2025-01-31T08:00:00Z")
    assert (f.sources, f.types) == (("*.md",), ("md", "pdf", "txt"))
    assert f.since == datetime(2025, 1, 31, 8, tzinfo=UTC).timestamp()
    assert f.to_json() == {"source": ["*.md"], "type": ["md", "pdf", "txt"], "since": "2025-01-31T08:00:00Z"}
    assert SearchFilter.from_json(f.to_json()) == f
    assert SearchFilter.of(since="2025-01-31").since == datetime(2025, 1, 31).timestamp()  # midnight, local time
    assert abs(SearchFilter.of(since="7d").since - (datetime.now().timestamp() - 7 * 86_400)) < 60
    assert not SearchFilter() and not SearchFilter.of([], [], None) and SearchFilter.of(types=["md"])
    bad = [{"since": "last week"}, {"since": "2025-02-30"}, {"since": "0001-01-01T00:00:00+23:59"}]
    bad += [{"since": "9999-12-31T23:59:59-23:59"}, {"since": float("nan")}, {"since": 1e300}, {"since": "99999999w"}]
    cases = [(kwargs, "since") for kwargs in bad] + [({"types": ["m d"]}, "type"), ({"types": ["*"]}, "type")]
    for kwargs, field in cases:  # dates kb could not write back as JSON too, never a ValueError
        with pytest.raises(InputError) as caught:
            SearchFilter.of(**kwargs)
        assert caught.value.details["field"] == field


def test_since_filters_by_the_file_time_the_manifest_recorded_hash_embedder(crowded):
    kb, corpus = crowded
    old = corpus / "crowd_00.md"
    os.utime(old, (1_000_000_000, 1_000_000_000))  # 2001
    assert kb.ingest([corpus]).updated == 0  # an mtime alone: recorded, not re-embedded
    recent = SearchFilter.of(since="2020-01-01")
    found = {h.source for h in kb.search("varroa note", 100, options=SearchOptions(filter=recent))}
    assert str(old) not in found and len(found) == 61 - 1
    only_old = SearchFilter.of(since="2000-01-01", sources=["crowd_00.md"])
    assert {h.source for h in kb.search("varroa", 5, options=SearchOptions(filter=only_old))} == {str(old)}


def test_a_filter_that_leaves_nothing_says_so_hash_embedder(crowded):
    kb, _ = crowded
    nothing = SearchOptions(filter=SearchFilter.of(["*.docx"], since="2020-01-01"))
    for call in (lambda: kb.search("varroa", 3, options=nothing), lambda: kb.ask("varroa?", options=nothing)):
        with pytest.raises(NoMatchingDocuments) as caught:
            call()
        error = caught.value
        assert error.kind == "no_matching_documents" and error.remedy == "list_documents"
        assert "'*.docx'" in str(error) and "2020-01-01" in str(error)
        assert error.details["filter"]["source"] == ["*.docx"]


def test_dates_far_from_now_select_all_or_nothing_hash_embedder(crowded):
    """Nanoseconds past 2262 or before 1677 overflow SQLite's integers: the filter still
    answers (it failed with OverflowError, an HTTP 500)."""
    kb, _ = crowded
    with pytest.raises(NoMatchingDocuments):
        kb.search("varroa", 3, options=SearchOptions(filter=SearchFilter.of(since="9999-12-31")))
    assert kb.search("varroa", 3, options=SearchOptions(filter=SearchFilter.of(since="1600-01-01")))


def test_the_answer_cache_keys_on_the_filter_hash_embedder(crowded):
    kb, _ = crowded
    only_log = SearchOptions(filter=SearchFilter.of(["log"]))
    filtered = kb.ask("Which varroa treatment was used?", options=only_log)
    assert filtered.cached is False and filtered.citations
    assert all(c.source.endswith("target.md") for c in filtered.citations)
    assert kb.ask("Which varroa treatment was used?", options=only_log).cached is True
    unfiltered = kb.ask("Which varroa treatment was used?")
    assert unfiltered.cached is False and not any(c.source.endswith("target.md") for c in unfiltered.citations)


@pytest.mark.parametrize("exact_up_to", [256, 0])  # searched exactly; through Chroma's search among ids
def test_a_chunk_missing_from_the_store_does_not_fail_a_filtered_search_hash_embedder(
    crowded, monkeypatch, exact_up_to
):
    from kb.store import collection

    monkeypatch.setattr(collection, "EXACT_UP_TO", exact_up_to)
    kb, corpus = crowded
    target = str(corpus / "log" / "target.md")
    ids = kb.access.manifest.get(target).chunk_ids
    kb.access.store.delete(ids[:1])  # the manifest still lists it: a remove half-way, or damage
    only_log = SearchFilter.of(["log"])
    dense = kb.search("varroa fence paint", 5, options=SearchOptions(mode="dense", filter=only_log))
    assert {h.chunk_id for h in dense} == set(ids[1:])
    hybrid = kb.search("varroa fence paint", 5, options=SearchOptions(filter=only_log))
    assert {h.chunk_id for h in hybrid} >= set(ids[1:])  # the keyword side still has the manifest's row


def test_a_large_filter_goes_through_the_stores_search_among_ids_hash_embedder(crowded, monkeypatch):
    from kb.store import collection

    monkeypatch.setattr(collection, "EXACT_UP_TO", 10)
    kb, _ = crowded
    store = kb.access.store
    exact = store._exact  # type: ignore[attr-defined]
    read_exactly: list[int] = []
    monkeypatch.setattr(
        store, "_exact", lambda v, n, only, inc: read_exactly.append(len(only)) or exact(v, n, only, inc)
    )
    crowd = SearchFilter.of(["crowd_*.md"])
    hits = kb.search("varroa treatment note 7", 5, options=SearchOptions(mode="dense", filter=crowd))
    assert len(hits) == 5 and all("/crowd_" in h.source for h in hits) and read_exactly == []
    kb.search("varroa fence", 5, options=SearchOptions(mode="dense", filter=SearchFilter.of(["log"])))
    assert read_exactly == [3]


def test_a_kb_from_before_filters_and_the_keyword_index_is_filtered_without_reembedding_hash_embedder(
    tmp_path, kb_home, monkeypatch
):
    corpus = _corpus(tmp_path / "corpus")
    kb = KnowledgeBase(load_settings(model="hash"))
    kb.ingest([corpus])
    kb.close()
    _to_old_schema(kb_home)  # schema 2: file records and vectors only
    kb = KnowledgeBase(load_settings(model="hash"))
    monkeypatch.setattr(type(kb.home), "embedder", property(lambda self: pytest.fail("re-embedded")))
    only = SearchOptions(filter=SearchFilter.of(["target.md"]))
    with write_lock(kb.settings.kb_dir, "default", 0, lambda message: None):  # the index cannot be built: dense
        hits = kb.search("varroa oxalic treatment", 2, options=only)
    assert [h.source for h in hits] == [str(corpus / "log" / "target.md")] * 2 and "varroa count" in hits[0].text
    hits = kb.search("varroa oxalic treatment", 2, options=only.merged(mode="keyword"))  # built now, from the store
    assert len(hits) == 1 and "varroa count" in hits[0].text
    kb.close()
