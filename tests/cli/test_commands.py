"""The CLI contract: JSON shapes, exit codes, stdin, errors. In-process runs share the
loaded model; subprocess runs check what only a real process shows."""

import json

from tests.conftest import SAMPLE, run_kb

INGEST_KEYS = {
    "files_seen",
    "added",
    "updated",
    "unchanged",
    "removed",
    "failed",
    "chunks_added",
    "chunks_removed",
    "seconds",
}
HIT_KEYS = {
    "query",
    "rank",
    "score",
    "source",
    "chunk_id",
    "page",
    "lines",
    "locator",
    "heading",
    "text",
    "similarity",
    "keyword_rank",
    "rerank_score",
}


def test_ingest_json_summary_and_second_run_unchanged(cli, tmp_path):
    first = cli("ingest", SAMPLE, "--json")
    assert first.code == 0, first.err
    summary = first.json()
    assert set(summary) >= INGEST_KEYS
    assert summary["added"] == summary["files_seen"] == 11 and summary["failed"] == []
    again = cli("ingest", SAMPLE, "--json").json()
    assert again["unchanged"] == 11 and again["chunks_added"] == 0


def test_search_json_is_ndjson_with_the_documented_keys(cli, sample_kb):
    res = cli("search", "how do I treat varroa with oxalic acid", "--json", "-k", "3")
    assert res.code == 0, res.err
    hits = res.ndjson()
    assert len(hits) == 3 and all(set(h) == HIT_KEYS for h in hits)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["source"].endswith("varroa_mites.html")


def test_search_reads_many_queries_from_stdin(cli, sample_kb):
    res = cli("search", "-", "--json", "-k", "2", stdin="queen eggs per day\n\nwinter stores\n")
    hits = res.ndjson()
    assert [h["query"] for h in hits] == ["queen eggs per day"] * 2 + ["winter stores"] * 2


def test_list_info_and_remove(cli, sample_kb, sample_home):
    docs = cli("list", "--json").ndjson()
    assert len(docs) == 11 and set(docs[0]) == {"source", "chunks", "bytes", "ingested_at"}
    info = cli("info", "--json").json()
    assert {"home", "model", "documents", "chunks", "bytes"} <= set(info)
    assert info["documents"] == 11 and info["model"] == "all-MiniLM-L6-v2"
    target = next(d["source"] for d in docs if d["source"].endswith("swarming.txt"))
    assert cli("remove", target).code == 0
    assert cli("info", "--json").json()["documents"] == 10
    missing = cli("remove", target)
    assert missing.code == 2 and "kb list" in missing.err


def test_exit_code_1_when_some_files_fail(cli, tmp_path):
    (tmp_path / "ok.md").write_text("# fine\n\ntext here\n")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01\x02" * 100)
    res = cli("ingest", tmp_path, "--json")
    assert res.code == 1
    assert [f["path"].rsplit("/", 1)[-1] for f in res.json()["failed"]] == ["bad.txt"]


def test_subprocess_usage_and_config_errors_exit_2_with_one_line(tmp_path, kb_home):
    assert run_kb("search").code == 2  # missing argument: usage error
    kb_home.mkdir(parents=True)
    (kb_home / "config.toml").write_text("top_k = 'many'\n")
    res = run_kb("info")
    assert res.code == 2
    assert res.err.strip().count("\n") == 0 and "config.toml" in res.err and "Traceback" not in res.err
    debug = run_kb("--debug", "info")
    assert "Traceback" in debug.err


def test_subprocess_version_and_search_on_empty_kb(kb_home, tmp_path):
    assert run_kb("--version").out.startswith("kb ")
    res = run_kb("search", "anything")
    assert res.code == 2 and "does not exist" in res.err and "kb --kb default ingest PATH" in res.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_kb("ingest", empty, env={"KB_MODEL": "hash"}).code == 0  # creates the KB, with nothing in it
    res = run_kb("search", "anything", env={"KB_MODEL": "hash"})
    assert res.code == 1 and "is empty" in res.err and "kb ingest PATH" in res.err


def test_subprocess_stdin_queries_with_hash_embedder(tmp_path):
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red.\n\nBananas are yellow.\n")
    env = {"KB_MODEL": "hash"}
    assert run_kb("ingest", tmp_path, "--json", env=env).code == 0
    res = run_kb("search", "-", "--json", "-k", "1", env=env, stdin="apples\nbananas\n")
    assert res.code == 0, res.err
    assert "\x1b[" not in res.out  # no colour codes when stdout is a pipe
    lines = [json.loads(x) for x in res.out.splitlines()]
    assert [x["query"] for x in lines] == ["apples", "bananas"]
