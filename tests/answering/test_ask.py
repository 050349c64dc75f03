"""kb ask end to end: real Chroma and model on sample_corpus; the openai kind against the
test server on 127.0.0.1 (the network seam)."""

import importlib.util
import json
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import SAMPLE, provider_config, run_kb, write_config

ASK_KEYS = {"question", "answer", "citations", "provider", "model", "cached", "usage", "latency_ms", "attempts"}


def test_extractive_answer_cites_the_right_passage_with_no_configuration(sample_kb):
    ans = sample_kb.ask("How many eggs can a queen lay per day?")
    assert ans.provider == "extractive"
    assert "2,000 eggs" in ans.answer
    assert ans.citations and ans.citations[0].hit.source.endswith("bee_biology.md")
    body = ans.to_json()
    assert set(body) >= ASK_KEYS
    assert set(body["citations"][0]) == {"n", "source", "chunk_id", "page", "lines", "locator", "text"}
    assert set(body["usage"]) == {"input_tokens", "output_tokens", "cost_usd"}
    assert set(body["latency_ms"]) == {"retrieve", "generate", "total"}


def test_extractive_cites_pdf_pages(sample_kb):
    ans = sample_kb.ask("How many kilograms of stores does a colony need for winter?")
    pages = {(c.hit.source.rsplit("/", 1)[-1], c.hit.page) for c in ans.citations}
    assert ("winter_preparation.pdf", 1) in pages


def test_repeat_is_cached_and_ingest_invalidates(sample_kb, tmp_path):
    first = sample_kb.ask("When should oxalic acid be used against varroa?")
    again = sample_kb.ask("when should oxalic acid be used against varroa")
    assert (first.cached, again.cached) == (False, True) and again.answer == first.answer
    (tmp_path / "new.md").write_text("# Oxalic\n\nOxalic acid is also sold as wood bleach.\n")
    sample_kb.ingest([tmp_path / "new.md"])
    assert sample_kb.ask("When should oxalic acid be used against varroa?").cached is False
    assert sample_kb.ask("When should oxalic acid be used against varroa?", use_cache=False).cached is False


def test_openai_provider_answers_and_falls_back(sample_kb, fake_openai, kb_home, monkeypatch, make_kb):
    write_config(kb_home, provider_config(fake_openai.url))
    monkeypatch.setenv("KB_TEST_KEY", "sk-test-1234567890abcdef")
    fake_openai.answer = "Up to 2,000 eggs a day [1], says passage [12]."
    kb = make_kb()
    ans = kb.ask("How many eggs can a queen lay per day?")
    assert (ans.provider, ans.model) == ("primary", "gpt-4o-mini")
    assert ans.answer == "Up to 2,000 eggs a day [1], says passage."
    assert ans.dropped_citations == [12]
    assert ans.usage.input_tokens > 0 and ans.usage.cost_usd > 0
    fake_openai.mode = "500"
    down = make_kb().ask("What is bee space?")
    assert down.provider == "extractive"
    assert [(a.provider, a.outcome) for a in down.attempts] == [("primary", "error"), ("extractive", "ok")]
    forced = make_kb().ask("What is bee space?", provider="extractive")
    assert [a.provider for a in forced.attempts] == ["extractive"]


def test_cached_ask_loads_neither_model_nor_query_encoder_nor_chroma(sample_kb, kb_home):
    question = "What is propolis?"
    sample_kb.ask(question)
    code = (
        "import sys, json\n"
        "from kb.cli.app import main\n"
        f"try:\n    main(['ask', {question!r}, '--json'])\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'chromadb', 'numpy',\n"
        "                           'tokenizers', 'kb.embedding.bert') if m in sys.modules)\n"
        "print(json.dumps(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout)["cached"] is True
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_bad_questions_exit_2_without_traceback(kb_home):
    for args, stdin in ((["ask", ""], None), (["ask", "-"], "x" * 1_000_000), (["search", "-"], "a\x00b\n")):
        res = run_kb(*args, stdin=stdin)
        assert res.code == 2, (args, res.err)
        assert "Traceback" not in res.err and res.err.startswith("error:")


def test_breaker_opens_and_recovers_across_separate_kb_processes(fake_openai, kb_home, tmp_path):
    env = {"KB_MODEL": "hash", "KB_TEST_KEY": "sk-test"}
    assert run_kb("ingest", SAMPLE, "--json", env=env).code == 0
    write_config(kb_home, provider_config(fake_openai.url, max_retries=0, threshold=2, cooldown_s=3600))
    fake_openai.mode = "500"

    def ask():
        res = run_kb("ask", "What is bee space?", "--json", "--no-cache", env=env)
        assert res.code == 0, res.err
        return res.json()

    for _ in range(2):
        assert ask()["attempts"][0]["outcome"] == "error"
    hits = fake_openai.hits
    skipped = ask()
    assert skipped["attempts"][0] == {
        **skipped["attempts"][0],
        "provider": "primary",
        "outcome": "skipped",
        "error": "circuit_open",
    }
    assert skipped["provider"] == "extractive" and fake_openai.hits == hits
    stats = json.loads(run_kb("stats", "--json", env=env).out)
    assert stats["providers"]["primary"]["breaker"] == "open"

    fake_openai.mode = "ok"
    # The hour of cooldown passes: the board's record of when the breaker opened moves back by
    # it (each process reads the board afresh), instead of a test waiting out a short cooldown.
    with sqlite3.connect(kb_home / "breakers.db") as board:
        board.execute("UPDATE breakers SET opened_at = opened_at - 3601 WHERE provider = 'primary'")
    recovered = ask()
    assert recovered["provider"] == "primary" and fake_openai.hits == hits + 1
    stats = json.loads(run_kb("stats", "--json", env=env).out)
    assert stats["providers"]["primary"]["breaker"] == "closed"
    assert stats["providers"]["primary"]["errors"] == 2 and stats["providers"]["primary"]["skipped"] == 1


def test_config_show_masks_secrets(kb_home, fake_openai):
    write_config(kb_home, provider_config(fake_openai.url))
    res = run_kb("config", "show", env={"KB_TEST_KEY": "sk-live-abcdefghijklmnop"})
    assert res.code == 0, res.err
    assert "abcdefghijklmnop" not in res.out and "****mnop" in res.out


def test_hash_embedder_llamacpp_without_the_extra_falls_back_with_a_fix_it_message(kb_home, make_kb, tmp_path):
    if importlib.util.find_spec("llama_cpp"):
        pytest.skip("llama-cpp-python is installed; this checks the message for when it is not")
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red and sweet.\n")
    write_config(kb_home, '[[providers]]\nname = "local"\nkind = "llamacpp"\nmodel_path = "/nowhere/model.gguf"\n')
    kb = make_kb(model="hash")
    kb.ingest([tmp_path])
    ans = kb.ask("What colour are apples?")
    assert ans.provider == "extractive"
    first = ans.attempts[0]
    assert (first.provider, first.outcome, first.error) == ("local", "error", "rejected")
    assert "pip install 'kb[local]'" in first.message
    # The CLI shows the fix-it message, and --json carries it.
    res = run_kb("ask", "What colour are apples?", "--no-cache", env={"KB_MODEL": "hash"})
    assert res.code == 0 and "fell back past local (rejected)" in res.err and "pip install 'kb[local]'" in res.err
    res = run_kb("ask", "What colour are apples?", "--no-cache", "--json", env={"KB_MODEL": "hash"})
    assert "pip install 'kb[local]'" in res.json()["attempts"][0]["message"]


def test_hash_embedder_empty_answers_fall_back_and_are_never_cached(
    kb_home, make_kb, tmp_path, fake_openai, monkeypatch
):
    monkeypatch.setenv("KB_TEST_KEY", "sk-test")
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red and sweet.\n")
    write_config(kb_home, provider_config(fake_openai.url, max_retries=0))
    kb = make_kb(model="hash")
    kb.ingest([tmp_path])
    fake_openai.mode = "empty"
    ans = kb.ask("What colour are apples?")
    assert ans.provider == "extractive" and ans.answer.strip()
    assert ans.attempts[0].message == "primary: the model returned an empty answer"
    fake_openai.mode = "ok"
    again = kb.ask("What colour are apples?")
    assert (again.cached, again.provider) == (False, "primary")


def test_hash_embedder_cache_clear(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red and sweet.\n")
    cli("ingest", tmp_path)
    cli("ask", "What colour are apples?")
    assert cli("ask", "What colour are apples?", "--json").json()["cached"] is True
    assert cli("cache", "clear").code == 0
    assert cli("ask", "What colour are apples?", "--json").json()["cached"] is False
