"""[[webhooks]] tables and the webhook settings load with the same checks as the rest:
types, ranges, known event names, http(s) URLs; a missing secret is said clearly."""

import base64

import pytest

from kb.config import load_settings
from kb.errors import ConfigError
from tests.conftest import write_config

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
HOOK = '[[webhooks]]\nurl = "https://hooks.example/kb"\nsecret_env = "KB_TEST_HOOK_SECRET"\n'


def test_webhooks_load_with_their_defaults(kb_home, monkeypatch):
    monkeypatch.setenv("KB_TEST_HOOK_SECRET", SECRET)
    write_config(
        kb_home,
        'webhooks_allow_hosts = ["10.0.0.7"]\nwebhook_timeout_s = 3\nwebhook_retry_for_s = 0\n'
        + HOOK
        + '[[webhooks]]\nurl = "http://10.0.0.7:9000/hook"\nsecret_env = "KB_TEST_HOOK_SECRET"\n'
        + 'events = ["job.failed", "job.failed"]\n',
    )
    settings = load_settings()
    first, second = settings.webhooks
    assert (first.url, first.secret_env, first.events) == (
        "https://hooks.example/kb",
        "KB_TEST_HOOK_SECRET",
        ["job.done", "job.failed"],
    )
    assert second.events == ["job.failed"]
    assert settings.webhooks_allow_hosts == ["10.0.0.7"] and settings.webhooks_allow_private is False
    assert (settings.webhook_timeout_s, settings.webhook_retry_for_s) == (3.0, 0.0)
    assert settings.warnings == []
    assert SECRET in settings.secrets()  # so messages can be scrubbed of it
    shown = settings.public_dict()
    assert shown["webhooks"][0]["secret"] == "****" + SECRET[-4:] and SECRET not in str(shown)


def test_defaults_without_webhooks(kb_home, monkeypatch):
    for var in ("KB_WEBHOOKS_ALLOW_PRIVATE", "KB_WEBHOOK_RETRY_FOR_S", "KB_WEBHOOK_TIMEOUT_S"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    assert settings.webhooks == [] and settings.webhooks_allow_private is False
    assert settings.webhook_retry_for_s == 300 and settings.webhook_timeout_s == 10


@pytest.mark.parametrize(
    "value, expected",
    [("true", True), ("1", True), ("TRUE", True), ("false", False), ("0", False), (" False ", False)],
)
def test_allow_private_from_the_environment(kb_home, monkeypatch, value, expected):
    write_config(kb_home, f"webhooks_allow_private = {str(not expected).lower()}\n")
    monkeypatch.setenv("KB_WEBHOOKS_ALLOW_PRIVATE", value)
    assert load_settings().webhooks_allow_private is expected


def test_a_bad_boolean_in_the_environment_names_the_variable(kb_home, monkeypatch):
    monkeypatch.setenv("KB_WEBHOOKS_ALLOW_PRIVATE", "yes please")
    with pytest.raises(
        ConfigError, match="environment: webhooks_allow_private: expected true or false, got 'yes please'"
    ):
        load_settings()


@pytest.mark.parametrize(
    "toml, message",
    [
        ("webhooks = 3\n", "webhooks must be a list of [[webhooks]] tables, got 3"),
        ("webhooks = [1]\n", "[[webhooks]] entry 1 must be a table, got 1"),
        ('[[webhooks]]\nsecret_env = "S"\n', 'webhooks.1: needs url = "https://..."'),
        ('[[webhooks]]\nurl = "https://h.example/"\n', 'webhooks.1: needs secret_env = "NAME"'),
        ('[[webhooks]]\nurl = 5\nsecret_env = "S"\n', "webhooks.1: url: expected a string, got 5"),
        (
            '[[webhooks]]\nurl = "ftp://h.example/"\nsecret_env = "S"\n',
            "webhooks.1: url: must be an http:// or https:// URL",
        ),
        (
            '[[webhooks]]\nurl = "https:///path"\nsecret_env = "S"\n',
            "url: must be an http:// or https:// URL with a host",
        ),
        (
            '[[webhooks]]\nurl = "http://h.example:99999/"\nsecret_env = "S"\n',
            "url: must be an http:// or https:// URL",
        ),
        ('[[webhooks]]\nurl = "h.example/hook"\nsecret_env = "S"\n', "url: must be an http:// or https:// URL"),
        (
            '[[webhooks]]\nurl = "https://h.example/"\nsecret_env = ""\n',
            "secret_env: must name an environment variable",
        ),
        (
            HOOK + 'events = ["job.started"]\n',
            "webhooks.1: events: must be one of job.done, job.failed, not 'job.started'",
        ),
        (HOOK + "events = []\n", "webhooks.1: events: must list at least 1 of job.done, job.failed"),
        (HOOK + 'events = "job.done"\n', "webhooks.1: events: expected a list of strings, got 'job.done'"),
        (HOOK + "events = [1]\n", "webhooks.1: events item 1: expected a string, got 1"),
        ("webhooks_allow_private = 'yes'\n", "webhooks_allow_private: expected true or false, got 'yes'"),
        ("webhooks_allow_private = 1\n", "webhooks_allow_private: expected true or false, got 1"),
        ("webhook_timeout_s = 0\n", "webhook_timeout_s: must be greater than 0, got 0"),
        ("webhook_retry_for_s = -1\n", "webhook_retry_for_s: must be at least 0, got -1"),
        ("webhook_retry_for_s = true\n", "webhook_retry_for_s: expected a number, got true"),
    ],
)
def test_bad_webhook_values_name_the_key(kb_home, toml, message):
    write_config(kb_home, toml)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)


def test_a_missing_or_malformed_secret_is_reported_by_the_processes_that_deliver(kb_home, monkeypatch):
    from kb.jobs.webhooks import secret_problems

    write_config(kb_home, 'webhook_callback_secret_env = "KB_TEST_CALLBACK_SECRET"\n' + HOOK)
    monkeypatch.delenv("KB_TEST_HOOK_SECRET", raising=False)
    monkeypatch.setenv("KB_TEST_CALLBACK_SECRET", "hunter2-not-whsec")
    settings = load_settings()
    assert settings.warnings == []  # `kb search` in a shell without the secret is not nagged
    problems = secret_problems(settings)
    assert problems[0].startswith("webhooks.1: environment variable KB_TEST_HOOK_SECRET is not set")
    assert problems[1].startswith("webhook_callback_secret_env: the value of KB_TEST_CALLBACK_SECRET is not a usable")
    assert not any("hunter2" in p for p in problems)


def test_unknown_webhook_keys_are_warnings(kb_home, monkeypatch):
    monkeypatch.setenv("KB_TEST_HOOK_SECRET", SECRET)
    write_config(kb_home, HOOK + 'event = ["job.done"]\n')
    settings = load_settings()
    assert settings.webhooks[0].events == ["job.done", "job.failed"]
    assert any("webhooks.1: unknown setting 'event' ignored; did you mean 'events'?" in w for w in settings.warnings)


def test_allowed_hosts_come_from_the_file_or_the_environment_and_the_old_flag_warns(kb_home, monkeypatch):
    write_config(kb_home, 'webhooks_allow_hosts = ["hooks.internal", "10.0.0.0/8"]\n')
    assert load_settings().webhooks_allow_hosts == ["hooks.internal", "10.0.0.0/8"]
    monkeypatch.setenv("KB_WEBHOOKS_ALLOW_HOSTS", "127.0.0.1,::1")
    assert load_settings().webhooks_allow_hosts == ["127.0.0.1", "::1"]
    write_config(kb_home, "webhooks_allow_private = true\n")
    warnings = load_settings().warnings
    assert any("webhooks_allow_private is deprecated" in w and "webhooks_allow_hosts" in w for w in warnings)
