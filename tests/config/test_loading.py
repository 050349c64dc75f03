"""Settings are checked as they load: every error names the key and where it came from,
exits 2 from the CLI, and never surfaces as a Python exception."""

import pytest

from kb.config import load_settings
from kb.errors import ConfigError
from tests.conftest import run_kb, write_config


@pytest.mark.parametrize(
    "toml, message",
    [
        ("top_k = true\n", "top_k: expected a whole number, got true"),
        ("top_k = 'many'\n", "top_k: expected a whole number, got 'many'"),
        ("top_k = 0\n", "top_k: must be at least 1, got 0"),
        ("lock_timeout_s = -1\n", "lock_timeout_s: must be at least 0, got -1"),
        ("breaker = 5\n", "breaker must be a table"),
        ("[breaker]\nfailure_threshold = 0\n", "breaker: failure_threshold: must be at least 1, got 0"),
        ("[breaker]\ncooldown_s = 'soon'\n", "breaker: cooldown_s: expected a number, got 'soon'"),
        ("providers = 3\n", "providers must be a list of [[providers]] tables"),
        ("[[providers]]\nkind = 'openai'\n", "entry 1 needs a name"),
        ("[[providers]]\nname = 'x'\nkind = 'gpt'\n", "providers.x: kind: must be one of openai, extractive, llamacpp"),
        ("[[providers]]\nname = 'x'\nmodel = 'm'\ntimeout_s = 0\n", "providers.x: timeout_s: must be greater than 0"),
        ("[[providers]]\nname = 'x'\nmodel = 'm'\nmax_retries = -2\n", "providers.x: max_retries: must be at least 0"),
        (
            "[[providers]]\nname = 'x'\nmodel = 'm'\nmax_retries = 1.5\n",
            "max_retries: expected a whole number, got 1.5",
        ),
        ("embed_dtype = 'int4'\n", "embed_dtype: must be one of auto, openvino, onnx, float32, bfloat16"),
        ("chunk_tokens = 300\n", "chunk_tokens: must be at most 254"),
        ("top_k = [1\n", "is not valid TOML"),
    ],
)
def test_bad_values_name_the_key(kb_home, toml, message):
    write_config(kb_home, toml)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)


def test_environment_values_are_checked_too(kb_home, monkeypatch):
    monkeypatch.setenv("KB_TOP_K", "lots")
    with pytest.raises(ConfigError, match="environment: top_k: expected a whole number, got 'lots'"):
        load_settings()
    monkeypatch.setenv("KB_TOP_K", "7")
    monkeypatch.setenv("KB_PROVIDER_PRIMARY_TIMEOUT_S", "-3")
    write_config(kb_home, "[[providers]]\nname = 'primary'\nmodel = 'm'\n")
    with pytest.raises(ConfigError, match=r"KB_PROVIDER_PRIMARY_.*timeout_s: must be greater than 0"):
        load_settings()
    monkeypatch.setenv("KB_PROVIDER_PRIMARY_TIMEOUT_S", "12.5")
    settings = load_settings()
    assert settings.top_k == 7 and settings.providers[0].timeout_s == 12.5


def test_unknown_keys_are_warnings_that_suggest_the_closest_name(kb_home):
    write_config(kb_home, "top_kk = 3\n[breaker]\ncooldown = 5\n[[providers]]\nname = 'x'\nmodle = 'm'\nmodel = 'm'\n")
    settings = load_settings()
    assert settings.top_k == 5
    assert any("unknown setting 'top_kk' ignored; did you mean 'top_k'?" in w for w in settings.warnings)
    assert any(
        "breaker: unknown setting 'cooldown' ignored; did you mean 'cooldown_s'?" in w for w in settings.warnings
    )
    assert any("providers.x: unknown setting 'modle' ignored; did you mean 'model'?" in w for w in settings.warnings)


def test_cli_config_errors_exit_2_in_one_line_and_warnings_go_to_stderr(kb_home):
    write_config(kb_home, "[breaker]\nfailure_threshold = true\n")
    res = run_kb("config", "show")
    assert res.code == 2 and "Traceback" not in res.err
    assert res.err.strip().splitlines() == [
        f"error: {kb_home / 'config.toml'}: breaker: failure_threshold: expected a whole number, got true"
    ]
    write_config(kb_home, "top_kk = 3\n")
    res = run_kb("config", "show")
    assert res.code == 0
    assert "warning:" in res.err and "did you mean 'top_k'?" in res.err


@pytest.mark.parametrize("name", ["notes-", "notes_", "-notes", "a/b", "x" * 64, ""])
def test_knowledge_base_names_chroma_cannot_hold_are_refused_up_front(name):
    from kb.config.loading import validate_kb_name

    with pytest.raises(ConfigError, match="starting and ending with a letter or digit"):
        validate_kb_name(name)


@pytest.mark.parametrize("name", ["a", "notes", "my-notes_2", "x" * 63])
def test_knowledge_base_names_that_chroma_can_hold_are_accepted(name):
    from kb.config.loading import validate_kb_name

    assert validate_kb_name(name) == name


def test_a_shared_store_without_shared_state_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setenv("KB_STORE_URL", "http://127.0.0.1:8000")
    with pytest.raises(ConfigError, match=r"store.url needs state.url too.*KB_STATE_URL"):
        load_settings()


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("KB_STORE_URL", "127.0.0.1:8000", "store.url must be a Chroma server's http://host:8000 URL"),
        ("KB_STATE_URL", "http://127.0.0.1:6379", "state.url must be a redis://host:6379/0 URL"),
        ("KB_QUEUE_URL", "localhost", "queue.url must be a redis://host:6379/0 URL"),
    ],
)
def test_backend_urls_of_the_wrong_kind_are_refused(monkeypatch, var, value, message):
    monkeypatch.setenv("KB_STATE_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_config_show_masks_the_redis_password_and_names_each_backend(monkeypatch):
    monkeypatch.setenv("KB_STATE_URL", "redis://:hunter2hunter2@127.0.0.1:6379/0")
    settings = load_settings()
    shown = settings.public_dict()
    assert "hunter2hunter2" not in str(shown)
    assert shown["state"]["url"] == "redis://:****@127.0.0.1:6379/0"
    assert shown["backends"]["cache"] == "Redis at redis://:****@127.0.0.1:6379/0"
    assert shown["backends"]["vector_store"].startswith("Chroma under ")
    assert "hunter2hunter2" in settings.secrets()  # scrubbed from messages
