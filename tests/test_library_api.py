"""The library API (`import kb`): the README's Python example runs as written, and what it
returns is what the CLI's --json prints."""

from __future__ import annotations

import contextlib
import io
import re

import kb
from tests.conftest import ROOT


def _readme_python() -> str:
    [block] = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return block


def test_the_readme_example_runs_hash_embedder(monkeypatch, cli):
    monkeypatch.setenv("KB_MODEL", "hash")
    monkeypatch.chdir(ROOT)  # the example ingests sample_corpus/ by its relative path
    printed = io.StringIO()
    names: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(_readme_python(), "README.md", "exec"), names)
    lines = printed.getvalue().splitlines()
    assert lines[0] == "11 added, " + f"{names['report'].chunks_added} chunks, 0 failed"
    assert len([line for line in lines if "sample_corpus/" in line and line[0].isdigit()]) == 3
    assert names["answer"].citations and lines[-1].startswith("document_not_found ")
    assert lines[-1].endswith(" list_documents")
    # The values are the CLI's machine output, field for field.
    listed = cli("--kb", "bees", "list", "--json").ndjson()
    with kb.open("bees") as bees:
        assert [d.to_json() for d in bees.documents()] == listed
        assert bees.info().to_json() == cli("--kb", "bees", "info", "--json").json()
        query = "queen eggs"
        assert [h.to_json(query) for h in bees.search(query, k=3)] == cli("--kb", "bees", "search", query,
                                                                            "-k", "3", "--json").ndjson()  # fmt: skip


def test_public_names_are_exported_and_typed():
    for name in kb.__all__:
        assert getattr(kb, name) is not None, name
    assert kb.KnowledgeBase.search.__annotations__["return"] == "list[Hit]"
    assert issubclass(kb.DocumentNotFound, kb.NotFound) and issubclass(kb.NotFound, kb.KbError)
