"""A read-only KB_HOME can still be searched and asked, and nothing in it changes. Runs kb
without root's permission override, so the permission bits really hold (hash embedder)."""

from __future__ import annotations

import os
import stat

import pytest

from tests.conftest import run_kb

HASH = {"KB_MODEL": "hash"}


def _state(root) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(folder, name))
            out[os.path.relpath(os.path.join(folder, name), root)] = (st.st_size, st.st_mtime_ns)
    return out


def _chmod_tree(root, writable: bool) -> None:
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""]:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
            os.chmod(path, (mode | stat.S_IWUSR) if writable else (mode & ~bits))


@pytest.fixture
def readonly_home(tmp_path, kb_home):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.md").write_text("# Bees\n\nBees make honey from nectar. The queen lays the eggs.\n")
    (docs / "wax.md").write_text("# Wax\n\nWorkers build comb from wax flakes.\n")
    assert run_kb("ingest", docs, env=HASH).code == 0
    assert run_kb("ask", "Who lays the eggs?", env=HASH).code == 0  # metrics and cache exist
    assert run_kb("--kb", "other", "ingest", docs / "wax.md", env=HASH).code == 0
    _chmod_tree(kb_home, writable=False)
    yield kb_home, docs
    _chmod_tree(kb_home, writable=True)


def test_a_readonly_home_is_searched_and_asked_and_left_as_it_was(readonly_home):
    home, docs = readonly_home
    before = _state(home)
    assert run_kb("ingest", docs, env=HASH, as_user=True).code != 0  # the check really holds

    search = run_kb("search", "queen eggs", "--json", env=HASH, as_user=True)
    assert search.code == 0, search.err
    assert search.ndjson()[0]["source"].endswith("bees.md")
    ask = run_kb("ask", "Who lays the eggs?", "--json", "--no-cache", env=HASH, as_user=True)
    assert ask.code == 0, ask.err
    assert "queen" in ask.json()["answer"]
    again = run_kb("ask", "Who lays the eggs?", "--json", env=HASH, as_user=True)
    assert again.code == 0 and again.json()["answer"] == ask.json()["answer"]  # answered anew: no cache
    for args in (["list"], ["info"], ["stats"], ["doctor"], ["kbs"], ["--kb", "other", "search", "comb"]):
        res = run_kb(*args, env=HASH, as_user=True)
        assert res.code == 0, (args, res.err)
        assert "Traceback" not in res.err
    assert "healthy" in run_kb("doctor", env=HASH, as_user=True).out

    assert _state(home) == before


def test_writing_to_a_readonly_home_fails_in_one_line(readonly_home):
    _, docs = readonly_home
    for args in (
        ["ingest", docs],
        ["remove", docs / "bees.md"],
        ["doctor", "--repair"],
        ["kbs", "delete", "other", "-y"],
    ):
        res = run_kb(*args, env=HASH, as_user=True)
        assert res.code in (1, 2), (args, res.err)
        lines = res.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "write access" in lines[0], (args, res.err)
    res = run_kb("--kb", "typo", "list", env=HASH, as_user=True)
    assert res.code == 2 and "does not exist" in res.err


def test_a_readonly_kb_from_before_the_keyword_index_searches_densely_with_a_notice(tmp_path, kb_home):
    from tests.retrieval.test_hybrid import _to_old_schema

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.md").write_text("# Bees\n\nBees make honey from nectar. The queen lays the eggs.\n")
    (docs / "wax.md").write_text("# Wax\n\nWorkers build comb from wax flakes.\n")
    assert run_kb("ingest", docs, env=HASH).code == 0
    _to_old_schema(kb_home)
    _chmod_tree(kb_home, writable=False)
    try:
        before = _state(kb_home)
        for mode in ("hybrid", "keyword"):
            res = run_kb("search", "queen eggs", "--mode", mode, "--json", env=HASH, as_user=True)
            assert res.code == 0, res.err
            assert res.ndjson()[0]["source"].endswith("bees.md")
            assert res.err.count("\n") == 1 and "embeddings alone" in res.err
        assert _state(kb_home) == before
    finally:
        _chmod_tree(kb_home, writable=True)
