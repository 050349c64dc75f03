"""Hybrid retrieval: the FTS5 keyword index beside the vectors, fused by score.
Real Chroma and SQLite; the real model where dense search must genuinely miss, the hash
embedder (a fake model, named in the test) elsewhere."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from kb import KnowledgeBase, SearchOptions
from kb.config import load_settings
from kb.locking import write_lock
from kb.retrieval.keyword import match_expression
from tests.conftest import SAMPLE

CODE = "QX-77413"


# Look-alike part numbers, each in its own note: the embeddings of the codes are close
# together, so only the exact word tells which note holds the one asked for.
PARTS = {
    "QX-77413": "hinge for the observation hive lid",
    "QX-71743": "spring for the queen excluder frame",
    "QX-74713": "gasket for the honey extractor drum",
    "QX-73417": "latch for the travel box of nucleus colonies",
    "QX-77143": "valve for the honey settling tank",
    "QX-71347": "spindle for the uncapping fork rack",
}


def _note_with_code(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (code, part) in enumerate(PARTS.items()):
        (folder / f"part_{i}.md").write_text(
            f"# Spare part\n\nThe replacement {part} is part {code}; two spares are in the shed.\n"
        )
    return folder / "part_0.md"


def _manifest(home: Path, kb: str = "default") -> sqlite3.Connection:
    return sqlite3.connect(home / "kbs" / kb / "manifest.db")


def _to_old_schema(home: Path) -> None:
    """What a KB built before the keyword index looks like: schema 2, no chunks tables."""
    conn = _manifest(home)
    with conn:
        for trigger in ("chunks_ai", "chunks_ad", "chunks_au"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE chunks_fts")
        conn.execute("DROP TABLE chunks")
        conn.execute("DELETE FROM meta WHERE key = 'keyword_index'")
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def _keyword_ids(home: Path) -> set[str]:
    conn = _manifest(home)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM chunks")}
    finally:
        conn.close()


def _manifest_ids(kb: KnowledgeBase) -> set[str]:
    return {i for r in kb.access.manifest.all() for i in r.chunk_ids}


@pytest.fixture
def hash_kb(tmp_path, kb_home):
    corpus = tmp_path / "corpus"
    import shutil

    shutil.copytree(SAMPLE, corpus)
    kb = KnowledgeBase(load_settings(model="hash"))
    assert not kb.ingest([corpus]).failed
    yield kb, corpus
    kb.close()


def test_keyword_mode_finds_a_rare_code_that_dense_misses_real_model(sample_kb, tmp_path):
    note = _note_with_code(tmp_path / "extra")
    assert sample_kb.ingest([note.parent]).added == len(PARTS)

    dense = sample_kb.search(CODE, 5, options=SearchOptions(mode="dense"))
    keyword = sample_kb.search(CODE, 5, options=SearchOptions(mode="keyword"))
    hybrid = sample_kb.search(CODE, 5, options=SearchOptions(mode="hybrid"))

    assert dense[0].source != str(note)  # what the embeddings alone miss
    assert keyword[0].source == str(note) and CODE in keyword[0].text
    assert keyword[0].keyword_rank == 1 and keyword[0].similarity is None
    # Hybrid holds both: the keyword hit, and dense hits the keyword list did not find.
    assert any(h.chunk_id == keyword[0].chunk_id and h.keyword_rank == 1 for h in hybrid)
    assert any(h.chunk_id == dense[0].chunk_id and h.similarity == dense[0].score for h in hybrid)
    assert [h.rank for h in hybrid] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in itertools.pairwise(hybrid))


HOSTILE = [
    '"', '""', '"unbalanced', "*", "bee*", "^queen", "NEAR(queen eggs)", "NEAR", "AND", "OR", "NOT",
    "queen AND NOT", "-varroa", "text:queen", "heading:Bees", "{text heading}: queen", "(((", ")",
    "queen + eggs", "a'b", "'; DROP TABLE chunks; --", "🐝🍯", "ß straße STRASSE", "e\u0301te\u0301",
    "日本語のテキスト", "under_score", "x" * 1500, " ".join(["honey"] * 300), "\\", "%_%", "?", ":",
]  # fmt: skip


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_hostile_fts_queries_never_error_hash_embedder(hash_kb, mode):
    kb, _ = hash_kb
    results = kb.search_many(HOSTILE, SearchOptions(k=5, mode=mode))
    assert len(results) == len(HOSTILE)
    by_query = dict(zip(HOSTILE, results))
    assert by_query["NEAR(queen eggs)"]  # the words still count, as plain words
    assert by_query['"unbalanced'] == [] if mode == "keyword" else True


def test_match_expression_quotes_words_only():
    assert match_expression('NEAR(queen "eggs") -x:y*') == '"near" OR "queen" OR "eggs" OR "x" OR "y"'
    assert match_expression('"*()^:-') is None
    assert match_expression("the how") == '"the" OR "how"'  # only stopwords: kept
    assert match_expression("how do bees winter") == '"bees" OR "winter"'


def test_keyword_search_stems_and_matches_headings_hash_embedder(hash_kb):
    kb, _corpus = hash_kb
    hits = kb.search("swarms controlled", 3, options=SearchOptions(mode="keyword"))  # stems: swarm, control
    assert hits and hits[0].source.endswith("swarming.txt")


def test_a_removed_file_loses_its_keyword_rows_on_reingest_hash_embedder(hash_kb, kb_home):
    kb, corpus = hash_kb
    gone = corpus / "swarming.txt"
    ids = set(kb.access.manifest.get(str(gone)).chunk_ids)
    assert ids <= _keyword_ids(kb_home)
    gone.unlink()
    assert kb.ingest([corpus]).removed == 1
    assert not ids & _keyword_ids(kb_home)
    assert _keyword_ids(kb_home) == _manifest_ids(kb)
    assert all(
        not h.source.endswith("swarming.txt") for h in kb.search("swarm", 10, options=SearchOptions(mode="keyword"))
    )


def test_an_updated_file_replaces_its_keyword_rows_hash_embedder(hash_kb, kb_home):
    kb, corpus = hash_kb
    path = corpus / "glossary.rst"
    path.write_text(path.read_text() + f"\n\nZebrawood\n---------\n\nA timber some hives are made of, code {CODE}.\n")
    assert kb.ingest([corpus]).updated == 1
    assert _keyword_ids(kb_home) == _manifest_ids(kb)
    hits = kb.search("zebrawood", 3, options=SearchOptions(mode="keyword"))
    assert len(hits) == 1 and hits[0].source == str(path)


def test_remove_drops_keyword_rows_hash_embedder(hash_kb, kb_home):
    kb, corpus = hash_kb
    kb.remove(corpus / "swarming.txt")
    assert _keyword_ids(kb_home) == _manifest_ids(kb)


def _old_kb(tmp_path: Path, kb_home: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _note_with_code(corpus)
    (corpus / "bees.md").write_text("# Bees\n\nThe queen lays the eggs. Workers make honey from nectar.\n")
    kb = KnowledgeBase(load_settings(model="hash"))
    kb.ingest([corpus])
    kb.close()
    _to_old_schema(kb_home)
    return corpus


def test_an_old_kb_gets_its_keyword_index_on_first_search_without_reembedding_hash_embedder(
    tmp_path, kb_home, monkeypatch
):
    _old_kb(tmp_path, kb_home)
    kb = KnowledgeBase(load_settings(model="hash"))
    monkeypatch.setattr(type(kb.home), "embedder", property(lambda self: pytest.fail("re-embedded")))
    hits = kb.search(CODE, 3, options=SearchOptions(mode="keyword"))
    assert hits and hits[0].source.endswith("part_0.md")
    assert _keyword_ids(kb_home) == _manifest_ids(kb)
    assert _manifest(kb_home).execute("PRAGMA user_version").fetchone()[0] == 3
    kb.close()


def test_an_old_kb_gets_its_keyword_index_on_the_next_ingest_without_reembedding_hash_embedder(tmp_path, kb_home):
    corpus = _old_kb(tmp_path, kb_home)
    kb = KnowledgeBase(load_settings(model="hash"))
    report = kb.ingest([corpus])
    assert report.chunks_embedded == 0 and report.unchanged == len(PARTS) + 1
    assert _keyword_ids(kb_home) == _manifest_ids(kb)
    kb.close()


def test_an_old_kb_searches_densely_with_a_notice_while_another_process_writes_hash_embedder(tmp_path, kb_home):
    _old_kb(tmp_path, kb_home)
    kb = KnowledgeBase(load_settings(model="hash"))
    notices: list[str] = []
    kb.on_notice = notices.append
    with write_lock(kb.settings.kb_dir, "default", 0, lambda message: None):
        hits = kb.search("queen eggs", 3)  # hybrid by default: cannot build, falls back
    assert hits and hits[0].source.endswith("bees.md") and hits[0].similarity is not None
    assert len(notices) == 1 and "embeddings alone" in notices[0] and "\n" not in notices[0]
    hits = kb.search(CODE, 3, options=SearchOptions(mode="keyword"))  # the lock is free: built now
    assert hits[0].source.endswith("part_0.md")
    kb.close()


def test_unique_sources_gives_one_passage_per_document_hash_embedder(hash_kb):
    kb, _ = hash_kb
    for mode in ("hybrid", "dense", "keyword"):
        every = kb.search("queen bees honey brood", 8, options=SearchOptions(mode=mode))
        unique = kb.search("queen bees honey brood", 8, options=SearchOptions(mode=mode, unique_sources=True))
        assert len({h.source for h in every}) < len(every), mode  # the filter has work to do
        assert len({h.source for h in unique}) == len(unique) >= 5, mode
        assert [h.rank for h in unique] == list(range(1, len(unique) + 1))


def test_unknown_mode_is_an_input_error_hash_embedder(hash_kb, cli):
    res = cli("search", "queen", "--mode", "fuzzy")
    assert res.code != 0 and "--mode 'fuzzy' is not a search mode" in res.err and "Traceback" not in res.err


def test_cli_modes_and_json_fields_hash_embedder(hash_kb, cli, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    for mode in ("hybrid", "dense", "keyword"):
        res = cli("search", "varroa mites", "--mode", mode, "--unique-sources", "--json")
        assert res.code == 0, res.err
        hits = res.ndjson()
        assert hits and {"similarity", "keyword_rank", "score"} <= set(hits[0])
        assert len({h["source"] for h in hits}) == len(hits)
        if mode == "dense":
            assert all(h["keyword_rank"] is None and h["similarity"] == h["score"] for h in hits)
        if mode == "keyword":
            assert next(h["keyword_rank"] for h in hits) == 1


def test_the_answer_cache_keys_on_mode_and_unique_sources_hash_embedder(hash_kb):
    kb, _ = hash_kb
    question = "How many mites per 100 bees means I must treat?"
    assert not kb.ask(question, options=SearchOptions(mode="dense")).cached
    assert not kb.ask(question, options=SearchOptions(mode="keyword")).cached
    assert not kb.ask(question, options=SearchOptions(mode="keyword", unique_sources=True)).cached
    assert kb.ask(question, options=SearchOptions(mode="keyword")).cached


def test_the_drift_monitor_records_the_dense_top1_similarity_hash_embedder(hash_kb):
    kb, _ = hash_kb
    dense = kb.search("varroa mites", 5, options=SearchOptions(mode="dense"))
    kb.search("varroa mites", 5, options=SearchOptions(mode="hybrid"))
    events = kb.home.metrics.events("default", None)
    assert [e["top1"] for e in events[-2:]] == [dense[0].score, dense[0].score]


def test_hybrid_keeps_the_rarest_words_within_the_postings_budget():
    from kb.retrieval.keyword import RareTerms

    df = {"qx": 3, "hinge": 40, "lid": 900, "hive": 5000, "zzz": 0}
    counted: list[str] = []

    def count(word: str, cap: int) -> int:
        counted.append(word)
        return min(df[word], cap)

    rare = RareTerms(count, budget=1000)
    assert rare.choose(["hive", "lid", "hinge", "qx", "zzz"], "v1") == ["qx", "hinge", "lid"]
    assert rare.choose(["hive", "qx"], "v1") == ["qx"] and len(counted) == 5  # cached
    assert rare.choose(["hive"], "v1") == []  # only common words: the dense list carries the query
    rare.choose(["qx"], "v2")  # the KB changed: counted again
    assert counted[-1] == "qx" and len(counted) == 6


def test_an_answer_cached_from_another_ranking_is_not_served_hash_embedder(hash_kb, monkeypatch):
    from kb.retrieval import ranking

    kb, _ = hash_kb
    question = "How many mites per 100 bees means I must treat?"
    assert not kb.ask(question).cached
    assert kb.ask(question).cached
    monkeypatch.setattr(ranking, "RANKING_VERSION", ranking.RANKING_VERSION + "-next")
    assert not kb.ask(question).cached  # the passages it was built from may not be the ones found now
