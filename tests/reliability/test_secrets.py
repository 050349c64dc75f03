"""API keys never reach output, metrics, the cache or any other file under KB_HOME —
even when the provider echoes the key back in its error (the test server does)."""

from __future__ import annotations

from tests.conftest import SAMPLE, provider_config, run_kb, write_config

KEY = "sk-test-9f8e7d6c5b4a39281706SECRET"


def test_api_key_never_leaves_the_environment_hash_embedder(fake_openai, kb_home):
    env = {"KB_MODEL": "hash", "KB_TEST_KEY": KEY}
    assert run_kb("ingest", SAMPLE, env=env).code == 0
    write_config(kb_home, provider_config(fake_openai.url, max_retries=0, threshold=2))
    outputs = []
    for mode in ("ok", "401", "401", "401", "500"):
        fake_openai.mode = mode
        for args in (["ask", f"What is propolis ({mode})?", "--json"], ["ask", f"What is bee space ({mode})?"]):
            res = run_kb(*args, env=env)
            assert res.code == 0, res.err
            outputs += [res.out, res.err]
    for args in (["stats", "--json"], ["stats"], ["config", "show"], ["info", "--json"], ["doctor", "--json"]):
        res = run_kb(*args, env=env)
        outputs += [res.out, res.err]
    assert fake_openai.auth == f"Bearer {KEY}"  # the key was really used, and echoed on 401

    assert not [o for o in outputs if KEY in o or KEY[8:24] in o]
    leaks = []
    for path in kb_home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if KEY.encode() in data or KEY[8:24].encode() in data:
                leaks.append(str(path))
    assert leaks == []
    assert sum(1 for p in kb_home.rglob("*") if p.is_file()) > 5  # the files were there to search
