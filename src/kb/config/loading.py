"""Loading the settings tree: config.toml, then `KB_*` variables, then CLI flags.

Every value is checked against its field's type and declared range, and an error names
the key and where it came from ("config.toml: top_k: expected a whole number, got true").
Unknown keys are warnings that suggest the closest known name, so a config written for a
newer kb still loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kb.config.settings import RERANKER, ProviderSettings, Settings, WebhookSettings
from kb.errors import ConfigError

# Chroma names a collection kb_<name> and wants it to end with a letter or digit.
_KB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
_LISTS = {"providers", "webhooks"}  # arrays of tables ([[providers]], [[webhooks]])
_NOT_SETTINGS = {"home", "warnings"}


def default_home() -> Path:
    env = os.environ.get("KB_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("kb", appauthor=False))


def validate_kb_name(name: str) -> str:
    if not _KB_NAME.match(name):
        raise ConfigError(
            f"invalid knowledge base name {name!r}: use 1-63 letters, digits, '-' and '_', starting and ending with a letter or digit"
        )
    return name


# -- values -------------------------------------------------------------------------
def _kinds(hint: Any) -> tuple[type, bool]:
    """(the value's type, whether None is allowed) for `int`, `str | None` and the like."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
_PLURALS = {int: "whole numbers", float: "numbers", str: "strings", bool: "true/false values"}


def _convert_list(value: Any, item_hint: Any, where: str, from_text: bool, sep: str) -> list[Any]:
    if from_text and isinstance(value, str):  # a list in the environment is separated (`sep`)
        value = [part.strip() for part in value.split(sep) if part.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of {_PLURALS[item_hint]}, got {_show(value)}")
    return [_convert(item, item_hint, f"{where} item {i}", from_text) for i, item in enumerate(value, 1)]


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _from_text(value: str, kind: Any, optional: bool, where: str) -> Any:
    """A value from an environment variable or a flag, which arrive as text."""
    if value == "" and optional:
        return None
    try:
        if kind is int:
            return int(value.strip())
        if kind is float:
            return float(value.strip())
    except ValueError:
        raise ConfigError(f"{where}: expected {_NAMES[kind]}, got {value!r}") from None
    if kind is bool:
        if value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _convert(value: Any, hint: Any, where: str, from_text: bool, sep: str = ",") -> Any:
    kind, optional = _kinds(hint)
    if typing.get_origin(kind) is list:
        return _convert_list(value, typing.get_args(kind)[0], where, from_text, sep)
    if from_text and isinstance(value, str):
        return _from_text(value, kind, optional, where)
    if value is None and optional:
        return None
    ok = (
        (kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (kind is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (kind is str and isinstance(value, str))
        or (kind is bool and isinstance(value, bool))
    )
    if not ok:
        raise ConfigError(f"{where}: expected {_NAMES.get(kind, kind.__name__)}, got {_show(value)}")
    return float(value) if kind is float else value


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _check_range(value: Any, meta: Any, where: str) -> None:
    if value is None:
        return
    if isinstance(value, list):
        if len(value) < meta.get("min_items", 0):
            among = f" of {', '.join(meta['choices'])}" if "choices" in meta else ""
            raise ConfigError(f"{where}: must list at least {meta['min_items']}{among}")
        for item in value:
            _check_range(item, {k: v for k, v in meta.items() if k != "min_items"}, where)
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{where}: must be one of {', '.join(meta['choices'])}, not {value!r}")
    if "gt" in meta and not value > meta["gt"]:
        raise ConfigError(f"{where}: must be greater than {meta['gt']}, got {value}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{where}: must be at least {meta['min']}, got {value}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{where}: must be at most {meta['max']}, got {value}")


def _is_table(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint)


def _apply(target: Any, values: dict[str, Any], where: str, warnings: list[str], from_text: bool = False) -> None:
    """Sets `values` on a settings dataclass; a key naming a nested table ([breaker],
    [serve], ...) takes a table, applied the same way."""
    hints = typing.get_type_hints(type(target))
    known = {f.name: f for f in fields(target) if f.name not in _NOT_SETTINGS | _LISTS}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, [f.name for f in fields(target)], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
            warnings.append(f"{where}: unknown setting {key!r} ignored{hint}")
            continue
        if _is_table(hints[key]):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a table ([{key}] with its settings), got {_show(value)}")
            _apply(getattr(target, key), value, f"{where}: {key}", warnings, from_text)
            continue
        meta = known[key].metadata
        converted = _convert(value, hints[key], f"{where}: {key}", from_text, meta.get("sep", ","))
        _check_range(converted, meta, f"{where}: {key}")
        setattr(target, key, converted)


def _environment(target: Any, prefix: str) -> dict[str, Any]:
    """`KB_<NAME>` for each setting, `KB_<TABLE>_<NAME>` for a nested table's settings."""
    hints = typing.get_type_hints(type(target))
    out: dict[str, Any] = {}
    for f in fields(target):
        if f.name in _NOT_SETTINGS | _LISTS:
            continue
        var = "KB_NAME" if (prefix, f.name) == ("KB_", "kb") else f"{prefix}{f.name.upper()}"
        if _is_table(hints[f.name]):
            nested = _environment(getattr(target, f.name), f"{var}_")
            if nested:
                out[f.name] = nested
        elif var in os.environ:
            out[f.name] = os.environ[var]
    return out


# -- sources --------------------------------------------------------------------------
def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or remove it") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror}); check its permissions") from exc


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _providers(raw: Any, where: str, warnings: list[str]) -> list[ProviderSettings]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: providers must be a list of [[providers]] tables, got {_show(raw)}")
    providers: list[ProviderSettings] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: [[providers]] entry {i + 1} must be a table, got {_show(item)}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f'{where}: [[providers]] entry {i + 1} needs a name = "..."')
        provider = ProviderSettings(name=name)
        _apply(provider, {k: v for k, v in item.items() if k != "name"}, f"{where}: providers.{name}", warnings)
        prefix = f"KB_PROVIDER_{_env_name(name)}_"
        env = {
            f.name: os.environ[prefix + f.name.upper()]
            for f in fields(provider)
            if f.name != "name" and prefix + f.name.upper() in os.environ
        }
        _apply(provider, env, f"environment {prefix}*", warnings, from_text=True)
        providers.append(provider)
    return providers


def _check_url(url: str, where: str) -> None:
    """Only the shape here: addresses are checked when a delivery is made (DNS can change)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or url != url.strip():
        raise ConfigError(f"{where}: must be an http:// or https:// URL with a host, got {url!r}")


def _webhooks(raw: Any, where: str, warnings: list[str]) -> list[WebhookSettings]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: webhooks must be a list of [[webhooks]] tables, got {_show(raw)}")
    hooks: list[WebhookSettings] = []
    for i, item in enumerate(raw, 1):
        at = f"{where}: webhooks.{i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: [[webhooks]] entry {i} must be a table, got {_show(item)}")
        if "url" not in item:
            raise ConfigError(f'{at}: needs url = "https://..." (where deliveries are POSTed)')
        if "secret_env" not in item:
            raise ConfigError(
                f'{at}: needs secret_env = "NAME", the environment variable holding the whsec_... signing secret'
            )
        hook = WebhookSettings(url="", secret_env="")
        _apply(hook, item, at, warnings)
        _check_url(hook.url, f"{at}: url")
        if not hook.secret_env.strip():
            raise ConfigError(f"{at}: secret_env: must name an environment variable, got ''")
        hook.events = list(dict.fromkeys(hook.events))
        hooks.append(hook)
    return hooks


def _default_chain() -> list[ProviderSettings]:
    if not os.environ.get("OPENAI_API_KEY"):
        return []
    return [
        ProviderSettings(
            name="openai",
            kind="openai",
            base_url=os.environ.get("OPENAI_BASE_URL"),
            model=os.environ.get("KB_OPENAI_MODEL", "gpt-4o-mini"),
            api_key_env="OPENAI_API_KEY",
        )
    ]


def _validate(settings: Settings) -> None:
    validate_kb_name(settings.kb)
    if settings.webhooks_allow_private:
        settings.warnings.append(
            "webhooks_allow_private is deprecated: it lets webhooks reach every private address; list the receivers "
            'you mean in webhooks_allow_hosts (e.g. ["hooks.internal", "10.0.0.0/8"])'
        )
    if settings.chunk_overlap >= settings.chunk_tokens // 2:
        raise ConfigError(
            f"chunk_overlap ({settings.chunk_overlap}) must be less than half of chunk_tokens ({settings.chunk_tokens})"
        )
    _check_embedding(settings)
    names: set[str] = set()
    for p in settings.providers:
        if p.name in names:
            raise ConfigError(f"provider name {p.name!r} appears twice in {settings.config_path}; names must be unique")
        names.add(p.name)
        if p.kind == "openai" and not p.model:
            raise ConfigError(
                f'provider {p.name!r}: kind openai needs a model; add model = "..." to its [[providers]] entry'
            )
        if p.kind == "llamacpp" and not p.model_path:
            raise ConfigError(f'provider {p.name!r}: kind llamacpp needs model_path = "/path/to/model.gguf"')
        if p.name == RERANKER:
            raise ConfigError(f"provider name {p.name!r} is kept for the reranker's breaker and stats; rename it")
    _validate_reranker(settings)


def _validate_reranker(settings: Settings) -> None:
    r = settings.reranker
    if r.kind == "http":
        if not r.base_url:
            raise ConfigError(
                'reranker: kind http needs base_url = "http://host:port/v1" (kb POSTs to {base_url}/rerank)'
            )
        _check_url(r.base_url, "reranker: base_url")
    if r.kind == "local" and not r.model_path:
        raise ConfigError('reranker: kind local needs model_path = "/path/to/cross-encoder" (a CrossEncoder folder)')


def _check_embedding(settings: Settings) -> None:
    """[embedding]: a service needs its URL and model name; for the local kind, `model` there
    is the same setting as the top-level `model` (a folder), and the two must not disagree."""
    e = settings.embedding
    if e.kind == "openai":
        if not e.base_url:
            raise ConfigError(
                'embedding: kind openai needs base_url = "http://host:port/v1" (KB_EMBEDDING_BASE_URL), '
                "the service's OpenAI-compatible endpoint"
            )
        _check_url(e.base_url, "embedding: base_url")
        if not e.model:
            raise ConfigError(
                'embedding: kind openai needs model = "..." (KB_EMBEDDING_MODEL), the name the service knows'
            )
        return
    if e.model:
        if settings.model and settings.model != e.model:
            raise ConfigError(
                f"embedding: model ({e.model!r}) and model ({settings.model!r}) disagree; set one of them"
            )
        settings.model = e.model


def load_settings(**overrides: Any) -> Settings:
    """Build the effective settings; `overrides` are CLI flags (None means not given)."""
    home = Path(overrides.pop("home")) if overrides.get("home") else default_home()
    settings = Settings(home=home)
    where = str(settings.config_path)
    data = _read_toml(settings.config_path)
    file_providers = data.pop("providers", None)
    file_webhooks = data.pop("webhooks", [])
    _apply(settings, data, where, settings.warnings)
    _apply(settings, _environment(settings, "KB_"), "environment", settings.warnings, from_text=True)
    _apply(settings, {k: v for k, v in overrides.items() if v is not None}, "option", settings.warnings)

    providers = _providers(file_providers, where, settings.warnings) if file_providers is not None else _default_chain()
    if not any(p.kind == "extractive" for p in providers):
        providers.append(ProviderSettings(name="extractive", kind="extractive"))
    settings.providers = providers
    settings.webhooks = _webhooks(file_webhooks, where, settings.warnings)
    _validate(settings)
    _check_backends(settings)
    return settings


def _check_backends(settings: Settings) -> None:
    """The URLs of the shared backends. A shared vector store needs shared state: the KB's
    manifest and write lock must be where every instance sees them."""
    from kb.state import check_url

    store = settings.store.url
    if store:
        if not store.startswith(("http://", "https://")):
            raise ConfigError(f"store.url must be a Chroma server's http://host:8000 URL, got {store!r}")
        if not settings.state.url:
            raise ConfigError(
                "store.url needs state.url too: instances sharing a Chroma server must share the KB's manifest "
                'and write lock; set state.url = "redis://host:6379/0" (KB_STATE_URL)'
            )
    if settings.state.url:
        check_url(settings.state.url)
    if settings.queue.url:
        check_url(settings.queue.url, "queue.url")
