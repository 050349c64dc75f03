"""Settings: a typed tree with one description per field.

Precedence, highest first: explicit overrides (CLI flags) > environment (`KB_*`) >
`$KB_HOME/config.toml` > defaults. Settings hold data only; the code that acts on them
lives with the stages that use them.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kb.errors import ConfigError

PROVIDER_KINDS = ("openai", "extractive", "llamacpp")
EMBED_DTYPES = ("auto", "openvino", "onnx", "float32", "bfloat16")
_KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


@dataclass
class ProviderSettings:
    name: str = field(metadata={"help": "Unique name, used by --provider and in stats."})
    kind: str = field(default="openai", metadata={"help": "openai | extractive | llamacpp"})
    base_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1"}
    )
    model: str | None = field(default=None, metadata={"help": "Model name sent to the endpoint."})
    api_key_env: str | None = field(default=None, metadata={"help": "Environment variable holding the API key."})
    timeout_s: float = field(default=30.0, metadata={"help": "Deadline for one call, retries included."})
    max_retries: int = field(default=2, metadata={"help": "Retries on timeouts, connection errors, 5xx and 429."})
    max_tokens: int = field(default=512, metadata={"help": "Upper bound on generated tokens."})
    temperature: float = field(default=0.1, metadata={"help": "Sampling temperature."})
    context_tokens: int | None = field(
        default=None, metadata={"help": "Model context window; a table covers common models, else 8192."}
    )
    input_cost_per_mtok: float | None = field(default=None, metadata={"help": "USD per million input tokens."})
    output_cost_per_mtok: float | None = field(default=None, metadata={"help": "USD per million output tokens."})
    model_path: str | None = field(default=None, metadata={"help": "GGUF file, for kind = llamacpp."})

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass
class BreakerSettings:
    failure_threshold: int = field(default=5, metadata={"help": "Consecutive failures that open a provider's breaker."})
    cooldown_s: float = field(
        default=30.0, metadata={"help": "Seconds an open breaker waits before a half-open probe."}
    )


@dataclass
class Settings:
    home: Path = field(metadata={"help": "Where everything lives ($KB_HOME)."})
    kb: str = field(default="default", metadata={"help": "Knowledge base name (--kb, $KB_NAME)."})
    model: str | None = field(
        default=None,
        metadata={"help": "Local sentence-transformers model folder; default: the packaged all-MiniLM-L6-v2."},
    )
    embed_dtype: str = field(
        default="auto",
        metadata={
            "help": "Ingest encoder: auto (the fastest for this CPU), openvino (bfloat16 where the CPU has it, "
            "else fp32), onnx (ONNX Runtime, fp32), float32 or bfloat16 (torch)."
        },
    )
    ingest_batch: int = field(
        default=1024,
        metadata={"help": "Chunks embedded and committed together; a crash loses at most one batch of work."},
    )
    chunk_tokens: int = field(
        default=200, metadata={"help": "Target chunk size in word pieces (the model reads at most 256)."}
    )
    chunk_overlap: int = field(default=32, metadata={"help": "Word pieces repeated between neighbouring chunks."})
    top_k: int = field(default=5, metadata={"help": "Passages retrieved per query."})
    cache_size_mb: int = field(default=256, metadata={"help": "Size limit of the answer and embedding cache."})
    lock_timeout_s: float = field(default=60.0, metadata={"help": "How long a writer waits for another kb process."})
    low_match: float = field(
        default=0.35, metadata={"help": "Top-1 similarity below which a question counts as not covered."}
    )
    max_question_chars: int = field(default=2000, metadata={"help": "Longest question or query accepted."})
    providers: list[ProviderSettings] = field(
        default_factory=list, metadata={"help": "The provider chain, tried in order."}
    )
    breaker: BreakerSettings = field(
        default_factory=BreakerSettings, metadata={"help": "Circuit breaker, per provider."}
    )

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def kb_dir(self) -> Path:
        return self.home / "kbs" / self.kb

    def public_dict(self) -> dict[str, Any]:
        """The effective settings with secrets masked, for `kb config show`."""
        data = asdict(self)
        data["home"] = str(self.home)
        for provider, raw in zip(self.providers, data["providers"]):
            key = provider.api_key()
            raw["api_key"] = _mask(key) if key else None
        return data


def _mask(secret: str) -> str:
    return "****" + secret[-4:] if len(secret) > 12 else "****"


def default_home() -> Path:
    env = os.environ.get("KB_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("kb", appauthor=False))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    kind = str(annotation)
    try:
        if "int" in kind and "float" not in kind and not isinstance(value, bool):
            return int(value) if value is not None else None
        if "float" in kind:
            return float(value) if value is not None else None
        if kind.startswith("str") and value is not None:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: expected {kind}, got {value!r}; fix it in config.toml or the environment") from exc
    return value


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(target)}
    for key, value in values.items():
        if key not in known or key in ("providers", "breaker", "home"):
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
        setattr(target, key, _coerce(value, known[key].type, f"{where}.{key}"))


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or remove it") from exc


def _providers(raw: list[Any], where: Path) -> list[ProviderSettings]:
    providers: list[ProviderSettings] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("name"):
            raise ConfigError(f"{where}: [[providers]] entry {i + 1} needs a name")
        provider = ProviderSettings(name=str(item["name"]))
        _apply(provider, {k: v for k, v in item.items() if k != "name"}, f"providers.{provider.name}")
        prefix = f"KB_PROVIDER_{_env_name(provider.name)}_"
        env = {
            f.name: os.environ[prefix + f.name.upper()]
            for f in fields(provider)
            if prefix + f.name.upper() in os.environ
        }
        _apply(provider, env, f"environment {prefix}*")
        providers.append(provider)
    return providers


def _default_chain() -> list[ProviderSettings]:
    chain = []
    if os.environ.get("OPENAI_API_KEY"):
        chain.append(
            ProviderSettings(
                name="openai",
                kind="openai",
                base_url=os.environ.get("OPENAI_BASE_URL"),
                model=os.environ.get("KB_OPENAI_MODEL", "gpt-4o-mini"),
                api_key_env="OPENAI_API_KEY",
            )
        )
    return chain


def _validate(settings: Settings) -> None:
    if not _KB_NAME.match(settings.kb):
        raise ConfigError(f"invalid knowledge base name {settings.kb!r}: use letters, digits, '-' and '_'")
    if settings.embed_dtype not in EMBED_DTYPES:
        raise ConfigError(f"embed_dtype must be one of {', '.join(EMBED_DTYPES)}, not {settings.embed_dtype!r}")
    if not 16 <= settings.chunk_tokens <= 256:
        raise ConfigError("chunk_tokens must be between 16 and 256 (the embedding model reads 256 word pieces)")
    if not 0 <= settings.chunk_overlap < settings.chunk_tokens // 2:
        raise ConfigError("chunk_overlap must be at least 0 and less than half of chunk_tokens")
    if settings.ingest_batch < 1:
        raise ConfigError("ingest_batch must be at least 1")
    if settings.top_k < 1:
        raise ConfigError("top_k must be at least 1")
    names = set()
    for p in settings.providers:
        if p.kind not in PROVIDER_KINDS:
            raise ConfigError(f"provider {p.name!r}: unknown kind {p.kind!r}; use one of {', '.join(PROVIDER_KINDS)}")
        if p.name in names:
            raise ConfigError(f"provider name {p.name!r} appears twice in {settings.config_path}; names must be unique")
        names.add(p.name)
        if p.kind == "openai" and not p.model:
            raise ConfigError(
                f'provider {p.name!r}: kind openai needs a model; add model = "..." to its [[providers]] entry'
            )
        if p.kind == "llamacpp" and not p.model_path:
            raise ConfigError(f'provider {p.name!r}: kind llamacpp needs model_path = "/path/to/model.gguf"')


def load_settings(**overrides: Any) -> Settings:
    """Build the effective settings; `overrides` are CLI flags (None means not given)."""
    home = Path(overrides.pop("home")) if overrides.get("home") else default_home()
    settings = Settings(home=home)
    data = _read_toml(settings.config_path)
    file_providers = data.pop("providers", None)
    breaker = data.pop("breaker", {})
    _apply(settings, data, str(settings.config_path))
    _apply(settings.breaker, breaker, "breaker")

    env = {}
    for f in fields(settings):
        var = "KB_NAME" if f.name == "kb" else f"KB_{f.name.upper()}"
        if f.name not in ("home", "providers", "breaker") and var in os.environ:
            env[f.name] = os.environ[var]
    _apply(settings, env, "environment")
    _apply(settings, {k: v for k, v in overrides.items() if v is not None}, "option")

    providers = _providers(file_providers, settings.config_path) if file_providers is not None else _default_chain()
    if not any(p.kind == "extractive" for p in providers):
        providers.append(ProviderSettings(name="extractive", kind="extractive"))
    settings.providers = providers
    _validate(settings)
    return settings
