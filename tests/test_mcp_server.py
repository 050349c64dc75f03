"""kb mcp: `python -m kb mcp` in a real process, driven by the MCP SDK's own client over
stdio. Results are checked against what the facade returns for the same input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from kb import KnowledgeBase, SearchFilter, SearchOptions
from kb.config import load_settings
from tests.conftest import ROOT, SAMPLE, run_kb

TOOLS = {"search", "ask", "list_documents"}
NOTES = {
    "queen.md": "# The Queen\n\nThe queen lays up to 2,000 eggs per day in spring.\n\n"
    "## Mating\n\nShe mates with 12 to 20 drones on her mating flights.\n",
    "varroa.md": "# Varroa\n\nVarroa mites feed on bee larvae and spread viruses.\n\n"
    "## Treatment\n\nOxalic acid is used in winter when the colony has no brood.\n",
}


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _ingest(folder: Path, kb: str = "default") -> KnowledgeBase:
    """Ingests in this process (KB_HOME and KB_MODEL come from the environment)."""
    base = KnowledgeBase(load_settings(kb=kb))
    assert not base.ingest([folder]).failed
    return base


def _run(errlog: Path, session, *args: str, model: str | None = "hash", mode: str = "auto") -> Any:
    """Runs `session(client)` against `python -m kb [ARGS] mcp`, started by the SDK's stdio
    transport, which passes the server only the variables given here (and PATH, HOME...).
    The server's stderr goes to `errlog`."""
    env = {"KB_HOME": os.environ["KB_HOME"], "PYTHONPATH": os.pathsep.join(sys.path)}
    if model:
        env["KB_MODEL"] = model
    params = StdioServerParameters(command=sys.executable, args=["-m", "kb", *args, "mcp"], env=env, cwd=str(ROOT))

    async def main() -> Any:
        with errlog.open("w") as log, anyio.fail_after(60):
            async with Client(stdio_client(params, errlog=log), mode=mode, read_timeout_seconds=30) as client:
                return await session(client)

    return anyio.run(main)


def _text(result) -> str:
    return "".join(block.text for block in result.content)


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # legacy: the initialize handshake desktop clients use
def test_tools_and_their_schemas_hash_embedder(tmp_path, mode):
    async def session(client):
        return (await client.list_tools()).tools

    tools = {t.name: t for t in _run(tmp_path / "err.log", session, mode=mode)}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 150, tool.name  # enough for an agent to choose...
        assert "\n" not in (tool.description or "") and tool.title  # ...in one paragraph
        assert tool.annotations and tool.annotations.read_only_hint
        assert tool.output_schema and tool.output_schema["type"] == "object"
        assert "kb" in tool.input_schema["properties"] and "kb" not in tool.input_schema.get("required", [])
    search, ask = tools["search"].input_schema, tools["ask"].input_schema
    assert search["required"] == ["query"] and ask["required"] == ["question"]
    assert {"type": "integer", "minimum": 1, "maximum": 100, "default": 5}.items() <= search["properties"]["k"].items()
    assert set(tools["search"].output_schema["properties"]) == {"kb", "query", "hits"}
    assert set(tools["list_documents"].output_schema["properties"]) == {"kb", "documents"}
    assert set(tools["ask"].output_schema["properties"]) == {
        "question", "answer", "citations", "provider", "model", "cached", "usage", "latency_ms", "attempts",
        "dropped_citations", "standalone_question", "standalone_method",
    }  # fmt: skip
    log = (tmp_path / "err.log").read_text()
    assert "kb mcp: serving knowledge base 'default'" in log
    assert "warning: knowledge base 'default' does not exist yet; create it with `kb --kb default ingest PATH`" in log


def test_search_ask_and_list_give_what_the_facade_gives_hash_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    notes = _ingest(_write(tmp_path / "notes", NOTES), kb="notes")
    other = _ingest(_write(tmp_path / "other", {"wax.md": "# Wax\n\nBeeswax candles burn cleanly.\n"}))
    query, question = "varroa mites oxalic acid treatment", "When is oxalic acid used?"
    expected_hits = [h.to_json(query) for h in notes.search(query, 2)]
    assert all(h["score"] > 0 for h in expected_hits)  # no ties, so the order is the same in every process
    expected_answer = notes.ask(question, use_cache=False).to_json()
    expected_docs = [d.to_json() for d in notes.documents()]
    other_docs = [d.to_json() for d in other.documents()]
    wax_hits = [h.to_json("candles") for h in other.search("candles", 1)]
    notes.close()
    other.close()

    async def session(client):
        return (
            await client.call_tool("search", {"query": query, "k": 2}),
            await client.call_tool("ask", {"question": question}),
            await client.call_tool("list_documents", {}),
            await client.call_tool("list_documents", {"kb": "default"}),
            await client.call_tool("search", {"query": "candles", "k": 1, "kb": "default"}),
        )

    # The server's default knowledge base is the one named by --kb, as in every command.
    search, ask, docs, default_docs, wax = _run(tmp_path / "err.log", session, "--kb", "notes")
    assert not any(r.is_error for r in (search, ask, docs, default_docs, wax))

    assert search.structured_content == {"kb": "notes", "query": query, "hits": expected_hits}
    top = expected_hits[0]
    assert top["source"].endswith("varroa.md") and top["heading"] == "Varroa > Treatment"
    assert f"[1] {top['source']}, lines {top['lines']}, Varroa > Treatment" in _text(search)
    assert top["text"] in _text(search)

    body = ask.structured_content
    for key in ("question", "answer", "citations", "provider", "model", "dropped_citations"):
        assert body[key] == expected_answer[key], key
    assert body["provider"] == "extractive" and body["citations"]
    text = _text(ask)  # the answer, then its numbered sources
    assert text.startswith(body["answer"].strip()) and "\n\nSources:\n[" in text
    for c in body["citations"]:
        assert f"[{c['n']}] {c['source']}, lines {c['lines']}" in text

    assert docs.structured_content == {"kb": "notes", "documents": expected_docs}
    assert _text(docs).startswith("2 documents in knowledge base 'notes':")
    assert default_docs.structured_content == {"kb": "default", "documents": other_docs}
    assert wax.structured_content["hits"] == wax_hits


def test_filters_give_what_the_facade_gives_hash_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    notes = _ingest(_write(tmp_path / "notes", NOTES))
    only_queen = SearchOptions(filter=SearchFilter.of(["queen.md"]))
    expected_hits = [h.to_json("varroa mites") for h in notes.search("varroa mites", 2, options=only_queen)]
    expected = notes.ask("How many eggs does the queen lay per day?", options=only_queen, use_cache=False).to_json()
    notes.close()

    async def session(client):
        return (
            await client.call_tool("search", {"query": "varroa mites", "k": 2, "source": ["queen.md"]}),
            await client.call_tool(
                "ask", {"question": "How many eggs does the queen lay per day?", "source": ["queen.md"]}
            ),
            await client.call_tool("search", {"query": "varroa", "type": ["pdf"], "since": "2000-01-01"}),
        )

    search, ask, nothing = _run(tmp_path / "err.log", session)
    assert search.structured_content["hits"] == expected_hits and expected_hits
    assert all(h["source"].endswith("queen.md") for h in expected_hits)
    body = ask.structured_content
    assert body["answer"] == expected["answer"] and body["citations"][0]["source"].endswith("queen.md")
    assert nothing.is_error and "matches the filter (type pdf" in _text(nothing)
    assert "list_documents shows what is" in _text(nothing)


def test_a_conversation_gives_what_the_facade_gives_hash_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    wax = {"wax.md": "# Wax\n\nBeeswax candles are poured at 75 degrees into moulds.\n"}
    notes = _ingest(_write(tmp_path / "notes", NOTES | wax))
    history = [
        {"role": "user", "content": "How are beeswax candles made?"},
        {"role": "assistant", "content": "They are poured into moulds."},
    ]
    expected = notes.ask("At what temperature?", history=history, use_cache=False).to_json()
    notes.close()

    async def session(client):
        return (
            await client.call_tool("ask", {"question": "At what temperature?", "history": history}),
            await client.call_tool("ask", {"question": "x?", "history": [{"role": "tool", "content": "x"}]}),
        )

    ask, bad_role = _run(tmp_path / "err.log", session)
    body = ask.structured_content
    assert (body["standalone_question"], body["standalone_method"]) == (
        "How are beeswax candles made? At what temperature?", "weighted"
    )  # fmt: skip
    assert body["answer"] == expected["answer"] and body["citations"][0]["source"].endswith("wax.md")
    assert "Searched for: How are beeswax candles made? At what temperature?" in _text(ask)
    assert bad_role.is_error and "history" in _text(bad_role)


def test_errors_are_one_line_tool_errors_and_the_server_keeps_serving_hash_embedder(tmp_path, kb_home, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    _ingest(_write(tmp_path / "notes", NOTES)).close()

    async def session(client):
        calls = [
            ("search", {"query": "queen", "kb": "typo"}),
            ("ask", {"question": "   "}),
            ("ask", {"question": "queen?", "kb": "../etc"}),
            ("search", {"query": "queen", "k": 0}),
            ("search", {"k": "many"}),
            ("ask", {"question": "x" * 2001}),
        ]
        failed = [await client.call_tool(name, args) for name, args in calls]
        return failed, await client.call_tool("search", {"query": "how many eggs does the queen lay"})

    failed, later = _run(tmp_path / "err.log", session)
    assert all(r.is_error and r.structured_content is None for r in failed)
    messages = [_text(r) for r in failed]
    assert all("\n" not in m and "Traceback" not in m and not m.startswith("Error executing") for m in messages)
    assert messages[0] == (
        f"knowledge base 'typo' does not exist in {kb_home} (existing: default); "
        "call list_documents without `kb` for the default knowledge base, or name an existing one"
    )  # kb's own message, with the remedy in the assistant's terms: no shell command
    assert messages[1].startswith("the question is empty")
    assert messages[2].startswith("invalid knowledge base name '../etc'")
    assert messages[3] == (
        "invalid arguments for search: k: input should be greater than or equal to 1; see the tool's input schema"
    )
    assert messages[4].startswith("invalid arguments for search: query: field required; k: input should be")
    assert "the limit is 2000 (setting max_question_chars)" in messages[5]

    assert not later.is_error and later.structured_content["hits"][0]["source"].endswith("queen.md")
    assert "Traceback" not in (tmp_path / "err.log").read_text()
    assert not (kb_home / "kbs" / "typo").exists()  # reading never creates a knowledge base


def test_stdout_carries_only_protocol_messages_hash_embedder(tmp_path, monkeypatch):
    """What a client reads, byte for byte: JSON-RPC lines only, notes on stderr."""
    monkeypatch.setenv("KB_MODEL", "hash")
    _ingest(_write(tmp_path / "notes", NOTES)).close()
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ask", "arguments": {"question": "eggs?"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search", "arguments": {"query": ""}}},
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdin and proc.stdout
        lines = []
        for request in requests:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            while "id" in request and request["id"] not in {json.loads(x).get("id") for x in lines if x.strip()}:
                lines.append(proc.stdout.readline())  # one request at a time: its reply before the next
        out, err = proc.communicate(timeout=30)  # closes stdin: end of input, the server exits
    finally:
        watchdog.cancel()
    assert proc.returncode == 0, err
    assert out == ""  # nothing after the replies either
    replies = [json.loads(line) for line in lines]  # every line is JSON...
    assert all(r["jsonrpc"] == "2.0" for r in replies)  # ...and JSON-RPC
    by_id = {r["id"]: r["result"] for r in replies if "id" in r}
    assert set(by_id) == {1, 2, 3}
    assert by_id[1]["serverInfo"]["name"] == "kb"
    assert by_id[2]["isError"] is False and by_id[2]["structuredContent"]["provider"] == "extractive"
    assert by_id[3]["isError"] is True and by_id[3]["content"][0]["text"].startswith("the question is empty")
    assert "kb mcp: serving knowledge base 'default'" in err


def test_readme_registration_snippet_starts_the_server_hash_embedder(tmp_path, monkeypatch):
    """The README's client configuration runs: its args start a server on that KB."""
    monkeypatch.setenv("KB_MODEL", "hash")
    block = re.search(r"```jsonc\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README shows how to register kb mcp"
    servers = json.loads(re.sub(r"^\s*//.*$", "", block.group(1), flags=re.M))["mcpServers"]
    (entry,) = servers.values()
    assert entry["command"] == "kb" and entry["args"][-1] == "mcp"
    name = entry["args"][entry["args"].index("--kb") + 1]
    _ingest(_write(tmp_path / "notes", NOTES), kb=name).close()

    async def session(client):
        return await client.call_tool("list_documents", {})

    result = _run(tmp_path / "err.log", session, *entry["args"][:-1])
    assert result.structured_content["kb"] == name and len(result.structured_content["documents"]) == 2


def test_search_and_ask_with_the_real_model(tmp_path):
    folder = _write(tmp_path / "corpus", {p.name: p.read_text() for p in SAMPLE.glob("*.md")})
    _write(folder, {"varroa_mites.html": (SAMPLE / "varroa_mites.html").read_text()})
    assert run_kb("ingest", folder).code == 0  # the real model, in its own process

    async def session(client):
        return (
            await client.call_tool("search", {"query": "how do I get rid of mites", "k": 1}),
            await client.call_tool("ask", {"question": "How many eggs can a queen lay per day?"}),
        )

    search, ask = _run(tmp_path / "err.log", session, model=None)
    assert search.structured_content["hits"][0]["source"].endswith("varroa_mites.html")
    assert "2,000 eggs" in ask.structured_content["answer"]
    assert ask.structured_content["citations"][0]["source"].endswith("bee_biology.md")


def test_kb_help_does_not_import_the_sdk():
    code = (
        "import sys\nimport kb.cli.app\n"
        "try:\n    kb.cli.app.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('mcp' in sys.modules, 'kb.mcp_server' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "mcp" in proc.stdout  # the command is listed...
    assert proc.stderr.split() == ["False", "False"]  # ...without importing the SDK


def test_in_process_a_bug_is_one_line_and_blocking_calls_leave_the_loop_free(kb_home):
    """With the SDK's in-memory client: an unexpected exception is reported the way the CLI
    reports one (not as the SDK's bare "Error executing tool"), and synchronous tools, like
    kb's, run on worker threads: a call that blocks does not hold up the others."""
    from kb import mcp_server

    server, kbs = mcp_server.build(load_settings())
    release = threading.Event()

    @server.tool()
    def broken() -> str:
        """Fails."""
        return str(1 // 0)

    @server.tool()
    def blocking() -> str:
        """Blocks until released."""
        return "released" if release.wait(10) else "still blocked after 10 s"

    async def session() -> dict:
        results: dict = {}

        async def call(name: str) -> None:
            results[name] = await client.call_tool(name, {})

        async with Client(server) as client, anyio.create_task_group() as tasks:
            tasks.start_soon(call, "blocking")
            await call("broken")
            await call("list_documents")  # answered while `blocking` holds its thread
            release.set()
        return results

    try:
        results = anyio.run(session)
    finally:
        kbs.close()
    assert results["broken"].is_error and _text(results["broken"]) == (
        "internal error (ZeroDivisionError: integer division or modulo by zero); the server's log has the details"
    )
    assert _text(results["list_documents"]).startswith("knowledge base 'default' does not exist")
    assert _text(results["blocking"]) == "released"
