"""The README's machine-output examples stay true: their keys are what kb prints."""

import json
import re
import signal

from tests.conftest import ROOT
from tests.ingest.test_watch import Watching


def _readme_json_blocks() -> list[dict]:
    text = (ROOT / "README.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_hash_embedder_readme_json_examples_match_real_output(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red and sweet.\n")
    ingest_doc, search_doc, ask_doc, plan_doc, stopped_doc = _readme_json_blocks()
    ingest = cli("ingest", tmp_path, "--json").json()
    assert set(ingest) == set(ingest_doc)
    hit = cli("search", "apples", "--json").ndjson()[0]
    assert set(hit) == set(search_doc)
    answer = cli("ask", "What colour are apples?", "--json").json()
    assert set(answer) == set(ask_doc)
    assert set(answer["citations"][0]) == set(ask_doc["citations"][0])
    assert set(answer["usage"]) == set(ask_doc["usage"]) and set(answer["latency_ms"]) == set(ask_doc["latency_ms"])
    assert set(answer["attempts"][0]) == set(ask_doc["attempts"][0])
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red, sweet and crisp.\n")
    (tmp_path / "o.md").write_text("# Other\n\nPears are green.\n")
    plan = cli("ingest", tmp_path, "--dry-run", "--json").json()
    assert set(plan) == set(plan_doc)
    assert set(plan["added"][0]) == set(plan_doc["added"][0]) == set(plan["updated"][0])
    assert plan["rate_source"] == "calibration" and plan["chunks_per_s"] > 0
    watching = Watching(tmp_path)  # a real watch, stopped: the summary line it prints
    try:
        assert watching.next()["event"] == "ingest"
        code, _ = watching.stop(signal.SIGTERM)
        assert code == 0
        assert set(watching.next(timeout=5)) == set(stopped_doc)
    finally:
        if watching.proc.poll() is None:
            watching.proc.kill()
