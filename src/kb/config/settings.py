"""The settings tree: data only, one description and the accepted range per field.

The code that acts on a setting lives with the stage that uses it; loading.py reads the
tree from config.toml, the environment and flags, and checks every value against the
`min`/`gt`/`max`/`choices` declared here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kb.options import SEARCH_MODES

PROVIDER_KINDS = ("openai", "extractive", "llamacpp")
RERANKER_KINDS = ("none", "http", "local")
RERANKER = "reranker"  # the reranker's name on the breaker board, in attempts and in stats
RERANK_DIALECTS = ("cohere", "tei")
EMBED_DTYPES = ("auto", "openvino", "onnx", "float32", "bfloat16")
EMBEDDING_KINDS = ("local", "openai")
ENCODING_FORMATS = ("base64", "float")
WEBHOOK_EVENTS = ("job.done", "job.failed")
# The model reads 256 word pieces, two of which are its [CLS] and [SEP] markers.
MODEL_WINDOW = 256
MAX_CHUNK_TOKENS = MODEL_WINDOW - 2


def _f(default: Any = None, help: str = "", **rules: Any) -> Any:
    return field(default=default, metadata={"help": help, **rules})


@dataclass
class ProviderSettings:
    name: str = field(metadata={"help": "Unique name, used by --provider and in stats."})
    kind: str = _f("openai", "openai | extractive | llamacpp", choices=PROVIDER_KINDS)
    base_url: str | None = _f(None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1")
    model: str | None = _f(None, "Model name sent to the endpoint.")
    api_key_env: str | None = _f(None, "Environment variable holding the API key.")
    timeout_s: float = _f(30.0, "Deadline for one call, retries included.", gt=0)
    max_retries: int = _f(2, "Retries on timeouts, connection errors, 5xx and 429.", min=0, max=20)
    max_tokens: int = _f(512, "Upper bound on generated tokens.", min=1)
    temperature: float = _f(0.1, "Sampling temperature.", min=0, max=2)
    context_tokens: int | None = _f(None, "Model context window; a table covers common models, else 8192.", min=512)
    input_cost_per_mtok: float | None = _f(None, "USD per million input tokens.", min=0)
    output_cost_per_mtok: float | None = _f(None, "USD per million output tokens.", min=0)
    model_path: str | None = _f(None, "GGUF file, for kind = llamacpp.")

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass
class BreakerSettings:
    failure_threshold: int = _f(5, "Consecutive failures that open a provider's breaker.", min=1)
    cooldown_s: float = _f(30.0, "Seconds an open breaker waits before a half-open probe.", min=0)


@dataclass
class RerankerSettings:
    kind: str = _f(
        "none",
        "none (off) | http (a /rerank server: Cohere, Jina, vLLM, llama.cpp, Infinity, TEI...) | local (a "
        "sentence-transformers CrossEncoder folder, model_path).",
        choices=RERANKER_KINDS,
    )
    base_url: str | None = _f(None, "kind http: the server's base URL; kb POSTs to {base_url}/rerank.")
    dialect: str = _f(
        "cohere",
        "kind http: cohere ({model, query, documents, top_n} -> {results: [{index, relevance_score}]}, spoken by "
        "Cohere, Jina, vLLM, llama.cpp, Infinity, OpenVINO Model Server, LiteLLM) or tei (Text Embeddings "
        "Inference: {query, texts} -> [{index, score}]).",
        choices=RERANK_DIALECTS,
    )
    model: str | None = _f(None, "kind http: the model name sent (cohere dialect), e.g. BAAI/bge-reranker-base.")
    api_key_env: str | None = _f(
        None, "kind http: environment variable holding a bearer token, if the server wants one."
    )
    model_path: str | None = _f(None, "kind local: a sentence-transformers CrossEncoder folder.")
    candidates: int = _f(30, "Fused candidates sent to the reranker (at least k are).", min=1, max=200)
    timeout_s: float = _f(5.0, "Deadline for reranking one search, retries included; then the fused order.", gt=0)
    max_retries: int = _f(1, "Retries on timeouts, connection errors, 5xx and 429, within timeout_s.", min=0, max=10)

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass
class EmbeddingSettings:
    kind: str = _f(
        "local",
        "local (the packaged model, or the `model` folder, in this process) or openai (an OpenAI-compatible "
        "/v1/embeddings service: Text Embeddings Inference, vLLM, Ollama, a hosted API, another kb serve).",
        choices=EMBEDDING_KINDS,
    )
    base_url: str | None = _f(None, "For kind = openai: the service's base URL, e.g. http://gpu-box:8080/v1.")
    model: str | None = _f(
        None, "For kind = openai: the model name sent to the service; for local: a model folder, as `model`."
    )
    api_key_env: str | None = _f(None, "Environment variable holding the service's API key (none: no key sent).")
    batch_size: int = _f(64, "Texts per /v1/embeddings request.", min=1, max=2048)
    max_concurrency: int = _f(4, "Requests in flight at once, per kb process.", min=1, max=64)
    timeout_s: float = _f(60.0, "Deadline for one request.", gt=0)
    max_retries: int = _f(4, "Retries of one request on timeouts, connection errors, 5xx, 429 and garbage.", min=0,
                          max=20)  # fmt: skip
    encoding_format: str = _f(
        "base64",
        "How vectors travel: base64 (a quarter of the bytes; what the official clients ask for) or float.",
        choices=ENCODING_FORMATS,
    )
    query_prefix: str = _f("", 'Put before every query, e.g. "query: " for e5, "search_query: " for nomic.')
    document_prefix: str = _f("", 'Put before every chunk, e.g. "passage: " for e5, "search_document: " for nomic.')
    threads: int | None = _f(
        None, "Threads of the local ingest encoder (`kb worker --threads`); none: one per core.", min=1, max=256
    )

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass
class WebhookSettings:
    url: str = field(metadata={"help": "Where deliveries are POSTed: an http(s) URL."})
    secret_env: str = field(
        metadata={"help": "Environment variable holding the whsec_... secret that signs every delivery."}
    )
    events: list[str] = field(
        default_factory=lambda: list(WEBHOOK_EVENTS),
        metadata={"help": "Events sent to this URL: job.done, job.failed.", "choices": WEBHOOK_EVENTS, "min_items": 1},
    )

    def secret(self) -> str | None:
        return os.environ.get(self.secret_env) or None


@dataclass
class ServeSettings:
    roots: list[str] = field(
        default_factory=list,
        metadata={"help": "Folders POST /v1/ingest may read (KB_SERVE_ROOTS, colon-separated); none: uploads only.",
                  "sep": ":"},
    )  # fmt: skip
    uploads_dir: str | None = _f(
        None,
        "Where uploaded files wait for a worker; default KB_HOME/uploads. With workers on other machines or "
        "KB_HOMEs: a folder they all mount at the same path.",
    )
    max_body_mb: float = _f(10.0, "Largest JSON request body.", gt=0)
    max_upload_mb: float = _f(100.0, "Largest upload (all files of one request).", gt=0)
    request_timeout_s: float = _f(120.0, "How long one request may run before it is answered with 504.", gt=0)
    max_in_flight: int = _f(128, "Requests one instance works on at once; more are answered 429.", min=1)
    micro_batch: bool = _f(
        True,
        "Answer searches (and embedding inputs, and encode the queries of asks) that arrive together in one batch.",
    )


@dataclass
class QueueSettings:
    url: str | None = _f(None, "Job queue: none for state.url (Redis) or SQLite under KB_HOME; redis://host:6379/0.")
    workers: int = _f(2, "Jobs `kb worker` runs at once (jobs of one KB still write one at a time).", min=1, max=64)
    lease_s: float = _f(30.0, "A running job renews its lease this often x3; a job whose worker died runs again.", gt=0)
    part_files: int = _f(
        32,
        "An ingest job splits into parts of this many files (a big file alone), which any worker takes.",
        min=1,
        max=10_000,
    )


@dataclass
class StoreSettings:
    url: str | None = _f(
        None, "Vector store: none for Chroma under KB_HOME; http://host:8000 for a Chroma server (`chroma run`)."
    )


@dataclass
class StateSettings:
    url: str | None = _f(
        None,
        "Shared state (cache, breakers, metrics, jobs, manifests, write locks): none for files under KB_HOME; "
        "redis://host:6379/0 to share it between instances.",
    )
    lock_lease_s: float = _f(
        30.0, "A writer renews its lock on Redis every third of this; a dead writer's expires.", gt=0
    )


@dataclass
class Settings:
    home: Path = field(metadata={"help": "Where everything lives ($KB_HOME)."})
    kb: str = _f("default", "Knowledge base name (--kb, $KB_NAME).")
    model: str | None = _f(None, "Local sentence-transformers model folder; default: the packaged all-MiniLM-L6-v2.")
    embed_dtype: str = _f(
        "auto",
        "Ingest encoder: auto (the fastest for this CPU), openvino (bfloat16 where the CPU has it, else fp32), "
        "onnx (ONNX Runtime, fp32), float32 or bfloat16 (torch).",
        choices=EMBED_DTYPES,
    )
    ingest_batch: int = _f(1024, "Chunks embedded and committed together; a crash loses at most one batch.", min=1)
    chunk_tokens: int = _f(
        200, "Chunk size in word pieces, heading path included (the model reads 254).", min=16, max=MAX_CHUNK_TOKENS
    )
    chunk_overlap: int = _f(32, "Word pieces repeated between neighbouring chunks.", min=0)
    top_k: int = _f(5, "Passages retrieved per query.", min=1, max=100)
    search_mode: str = _f(
        "hybrid",
        "hybrid (embeddings and keywords, fused), dense (embeddings) or keyword (FTS5 bm25).",
        choices=SEARCH_MODES,
    )
    unique_sources: bool = _f(False, "At most one passage per document in search results and answers.")
    cache_size_mb: int = _f(256, "Size limit of the answer and embedding cache.", min=1)
    lock_timeout_s: float = _f(60.0, "How long a writer waits for another kb process.", min=0)
    low_match: float = _f(0.35, "Top-1 similarity below which a question counts as not covered.", min=-1, max=1)
    max_question_chars: int = _f(2000, "Longest question or query accepted.", min=1)
    providers: list[ProviderSettings] = field(
        default_factory=list, metadata={"help": "The provider chain, tried in order."}
    )
    breaker: BreakerSettings = field(
        default_factory=BreakerSettings, metadata={"help": "Circuit breaker, per provider (and the reranker)."}
    )
    reranker: RerankerSettings = field(
        default_factory=RerankerSettings,
        metadata={"help": "A reranker stage after fusion, off by default ([reranker] kind = http or local)."},
    )
    webhooks: list[WebhookSettings] = field(
        default_factory=list, metadata={"help": "Receivers told when a background job ends ([[webhooks]] tables)."}
    )
    webhooks_allow_hosts: list[str] = field(
        default_factory=list,
        metadata={"help": "Webhook and callback receivers allowed although not public: host names, addresses or "
                          "networks (KB_WEBHOOKS_ALLOW_HOSTS, comma-separated), e.g. hooks.internal, 10.0.0.0/8.",
                  "sep": ","},
    )  # fmt: skip
    webhooks_allow_private: bool = _f(
        False, "Deprecated: allows every private receiver; list the ones you mean in webhooks_allow_hosts."
    )
    webhook_timeout_s: float = _f(
        10.0, "Deadline for each step of one delivery attempt (connect, send, wait for the answer).", gt=0, max=300
    )
    webhook_retry_for_s: float = _f(
        300.0, "How long failed deliveries are retried (network errors, 429, 5xx); 0 = one attempt.", min=0, max=86400
    )
    webhook_callback_secret_env: str | None = _f(
        None, "Environment variable holding the whsec_... secret that signs deliveries to a request's callback_url."
    )
    embedding: EmbeddingSettings = field(
        default_factory=EmbeddingSettings, metadata={"help": "Where embeddings are computed: here, or a service."}
    )
    serve: ServeSettings = field(default_factory=ServeSettings, metadata={"help": "kb serve: the HTTP service."})
    queue: QueueSettings = field(default_factory=QueueSettings, metadata={"help": "Background jobs (kb worker)."})
    store: StoreSettings = field(default_factory=StoreSettings, metadata={"help": "Where vectors live."})
    state: StateSettings = field(default_factory=StateSettings, metadata={"help": "What instances share."})
    warnings: list[str] = field(
        default_factory=list, metadata={"help": "What loading found questionable (unknown keys); front-ends show it."}
    )

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def uploads_dir(self) -> Path:
        return Path(self.serve.uploads_dir).expanduser() if self.serve.uploads_dir else self.home / "uploads"

    @property
    def kbs_dir(self) -> Path:
        return self.home / "kbs"

    @property
    def kb_dir(self) -> Path:
        return self.kbs_dir / self.kb

    def public_dict(self) -> dict[str, Any]:
        """The effective settings with secrets masked, for `kb config show`."""
        data = asdict(self)
        data.pop("warnings")
        data["home"] = str(self.home)
        for part in ("store", "state", "queue"):
            data[part]["url"] = _safe(data[part]["url"])
        data["backends"] = self.backends()
        for provider, raw in zip(self.providers, data["providers"]):
            key = provider.api_key()
            raw["api_key"] = mask(key) if key else None
        reranker_key = self.reranker.api_key()
        data["reranker"]["api_key"] = mask(reranker_key) if reranker_key else None
        embed_key = self.embedding.api_key()
        data["embedding"]["api_key"] = mask(embed_key) if embed_key else None
        for hook, raw in zip(self.webhooks, data["webhooks"]):
            secret = hook.secret()
            raw["secret"] = mask(secret) if secret else None
        return data

    def backends(self) -> dict[str, str]:
        """Which backend each shared part uses (`kb config show`), URLs without passwords."""
        store = _safe(self.store.url)
        state = _safe(self.state.url)
        queue = _safe(self.queue.url or self.state.url)
        home = str(self.home)
        local = f"SQLite under {home}"
        return {
            "vector_store": f"Chroma server at {store}" if store else f"Chroma under {home}/kbs/NAME/chroma",
            "manifest": f"Redis at {state}, mirrored per instance in {home}/kbs"
            if store
            else f"SQLite under {home}/kbs",
            "keyword_index": f"SQLite FTS5 per instance, in the manifest{' mirror' if store else ''}",
            "write_lock": f"lease on Redis at {state}" if store else f"file lock under {home}/kbs/NAME",
            "cache": f"Redis at {state}" if state else f"diskcache under {home}/cache",
            "breakers": f"Redis at {state}" if state else local,
            "metrics": f"Redis at {state}" if state else local,
            "jobs": f"Redis at {state}" if state else local,
            "queue": f"huey on Redis at {queue}" if queue else f"huey on SQLite under {home}",
        }

    def secrets(self) -> list[str]:
        """Every API key and webhook secret the settings can reach, so messages can be scrubbed of them."""
        keys = [key for p in self.providers if (key := p.api_key())]
        if reranker_key := self.reranker.api_key():
            keys.append(reranker_key)
        if embed_key := self.embedding.api_key():
            keys.append(embed_key)
        hooks = [secret for h in self.webhooks if (secret := h.secret())]
        callback = os.environ.get(self.webhook_callback_secret_env) if self.webhook_callback_secret_env else None
        passwords = [_password(url) for url in (self.store.url, self.state.url, self.queue.url)]
        return keys + hooks + ([callback] if callback else []) + [p for p in passwords if p]


def _password(url: str | None) -> str | None:
    from urllib.parse import urlsplit

    return urlsplit(url).password if url else None


def _safe(url: str | None) -> str | None:
    """A URL with its password masked (redis://:secret@host keeps host and port)."""
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@")
    return parts._replace(netloc=netloc).geturl()


def mask(secret: str) -> str:
    return "****" + secret[-4:] if len(secret) > 12 else "****"
