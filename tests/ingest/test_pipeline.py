"""Ingest on real Chroma and SQLite. Most tests use the HashEmbedder test double at the
model seam (names say so); test_real_model_* use all-MiniLM-L6-v2."""

import os

import pytest

from kb.cli import advice
from kb.errors import ConfigError
from tests.conftest import run_kb
from tests.pdfs import write_pdf


def _corpus(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nAlpha talks about apples.\n")
    (docs / "sub" / "b.txt").write_text("Bravo talks about bananas.\n")
    write_pdf(docs / "c.pdf", ["Page one: cherries.", "Page two: cranberries."])
    return docs


def _bump(path, text):
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_hash_embedder_incremental_reingest(tmp_path, make_kb):
    docs = _corpus(tmp_path)
    kb = make_kb(model="hash")
    first = kb.ingest([docs])
    assert (first.added, first.files_seen, first.failed) == (3, 3, [])
    total = kb.access.store.count()
    assert total == first.chunks_added == kb.info().chunks

    second = make_kb(model="hash").ingest([docs])
    assert (second.unchanged, second.added, second.updated, second.chunks_added) == (3, 0, 0, 0)

    _bump(docs / "a.md", "# Alpha\n\nAlpha now talks about apricots.\n")
    (docs / "sub" / "b.txt").unlink()
    kb3 = make_kb(model="hash")
    third = kb3.ingest([docs])
    assert (third.updated, third.removed, third.unchanged) == (1, 1, 1)
    sources = {d.source for d in kb3.documents()}
    assert sources == {str(docs / "a.md"), str(docs / "c.pdf")}
    hits = kb3.search("apricots", 10)
    assert all("bananas" not in h.text and "apples" not in h.text for h in hits)
    assert kb3.access.store.count() == kb3.info().chunks


def test_hash_embedder_unchanged_files_never_load_the_model(tmp_path, make_kb):
    docs = _corpus(tmp_path)
    make_kb(model="hash").ingest([docs])
    kb = make_kb(model="hash")

    class Exploding:
        model_id = "hash"

        def embed(self, texts):
            raise AssertionError("the model was used for an unchanged folder")

    kb.__dict__["embedder"] = Exploding()
    os.utime(docs / "a.md")  # mtime moves, content does not: the hash decides
    report = kb.ingest([docs])
    assert report.unchanged == 3
    assert "store" not in kb.__dict__  # Chroma was not even opened


def test_hash_embedder_bad_files_are_reported_and_do_not_stop_the_run(tmp_path, make_kb):
    docs = _corpus(tmp_path)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (docs / "empty.md").write_text("")
    report = make_kb(model="hash").ingest([docs])
    failed = {os.path.basename(f["path"]): f["reason"] for f in report.failed}
    assert set(failed) == {"broken.pdf", "binary.txt", "empty.md"}
    assert "binary" in failed["binary.txt"]
    assert report.added == 3


def test_hash_embedder_model_mismatch_is_a_config_error(tmp_path, make_kb):
    docs = _corpus(tmp_path)
    make_kb(model="hash").ingest([docs])
    with pytest.raises(ConfigError, match="built with the embedder hash"):
        make_kb().ingest([docs])
    with pytest.raises(ConfigError) as info:
        make_kb().search("apples")
    assert info.value.remedy == "model_changed" and info.value.details["built_with"] == "hash"
    assert "set the embedder back" in advice.message(info.value)  # the CLI's words for it


def test_hash_embedder_remove_and_separate_kbs(tmp_path, make_kb):
    docs = _corpus(tmp_path)
    make_kb(model="hash").ingest([docs])
    make_kb(model="hash", kb="other").ingest([docs / "a.md"])
    kb = make_kb(model="hash")
    assert kb.remove(docs / "sub") == (1, 1)
    assert len(kb.documents()) == 2
    assert len(make_kb(model="hash", kb="other").documents()) == 1


def test_real_model_pdf_page_numbers_in_hits(sample_kb):
    hits = sample_kb.search("How do I diagnose nosema with a microscope?", 3)
    assert hits[0].source.endswith("bee_health_field_manual.pdf")
    assert hits[0].page == 3


def test_real_model_second_ingest_is_all_unchanged_without_loading_the_model(sample_kb, sample_home):
    report = sample_kb.ingest([sample_home / "corpus"])
    assert report.unchanged == report.files_seen == 11
    assert report.changed is False
    assert "embedder" not in sample_kb.__dict__


def test_hash_embedder_heading_only_markdown_is_indexed_not_failed(tmp_path, make_kb):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "alpha.md").write_text("# Alpha notes\n")
    kb = make_kb(model="hash")
    report = kb.ingest([docs])
    assert (report.added, report.failed) == (1, [])
    hit = kb.search("alpha notes", k=1)[0]
    assert hit.text == "Alpha notes" and hit.source.endswith("alpha.md")


def test_hash_embedder_library_warnings_go_to_the_report_not_the_terminal(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = write_pdf(tmp_path / "src.pdf", ["Hello bees and honey."]).read_bytes()
    # A duplicated key: pypdf reads the page but logs "Multiple definitions in dictionary".
    (docs / "dup.pdf").write_bytes(pdf.replace(b"/Font <</F1 5 0 R>>", b"/Font <</F1 5 0 R /F1 5 0 R>>"))
    res = run_kb("ingest", docs, "--json", env={"KB_MODEL": "hash"})
    assert res.code == 0, res.err
    assert res.err == ""
    [warning] = [w["warning"] for w in res.json()["warnings"]]
    assert warning.startswith("pypdf reported 4 messages:") and "Multiple definitions" in warning
    doctor = run_kb("doctor", "--json", env={"KB_MODEL": "hash"}).json()
    assert doctor["quality"][0]["warnings"] == [warning]
    debug = run_kb("--debug", "ingest", docs, "--json", env={"KB_MODEL": "hash"})
    assert debug.code == 0 and debug.json()["unchanged"] == 1


def test_an_ingest_of_nothing_that_exists_is_refused_and_creates_nothing(tmp_path, make_kb, kb_home):
    from kb.errors import InputError

    with pytest.raises(InputError, match=r"nothing to ingest: .*gone does not exist"):
        make_kb(model="hash").ingest([tmp_path / "gone"])
    assert not (kb_home / "kbs").exists()  # no empty knowledge base left behind
