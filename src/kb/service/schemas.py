"""The HTTP API's contract: what each route takes and answers, as the OpenAPI document shows it.

Request bodies are validated strictly (no type coercion, unknown fields refused, text that is
not Unicode refused) and answer 422 `invalid_request` when they do not fit. Response models
document the answers; the routes build them from the core's values (`to_json`, the CLI's
machine output) without a second validation pass on the hot path, and the contract test
(schemathesis) holds the two together.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)

from kb.answering.question import text_problem
from kb.options import SearchFilter, SearchMode

MAX_QUERY_CHARS = 2000  # the max_question_chars default; a server set lower answers 400 above it
DURATION_PATTERN = r"^\d{1,4}(\.\d{1,3})?[smhdw]$"  # up to 9999 weeks: a date Python can still write
KB_NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$"


def _unicode(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"not valid text: {problem}")
    return value


def _whole(value: Any) -> Any:
    """45.0 is an integer to JSON Schema; strict validation would refuse it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Integers in a range: the bounds come before the validator, or the schema loses them.
UpTo100 = Annotated[int, Field(ge=1, le=100), BeforeValidator(_whole)]
UpTo50 = Annotated[int, Field(ge=1, le=50), BeforeValidator(_whole)]
Positive = Annotated[int, Field(ge=1), BeforeValidator(_whole)]


Text = Annotated[str, AfterValidator(_unicode)]
# Some text, and no control characters but tab and line breaks (kb refuses binary data).
# Written without a lookahead: generators of test data (schemathesis, Hypothesis) draw from
# it eight times as fast, and every regex engine reads it alike.
_ALLOWED = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
TEXT_PATTERN = rf"^{_ALLOWED}*[^\s\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]{_ALLOWED}*$"
QueryText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_QUERY_CHARS, pattern=TEXT_PATTERN), AfterValidator(_unicode)
]
KbName = Annotated[str, StringConstraints(pattern=KB_NAME_PATTERN)]
KB_FIELD = Field(None, description="Knowledge base (default: the server's).")


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", regex_engine="python-re")


# -- requests -------------------------------------------------------------------------------
FILE_TYPE_PATTERN = r"^\.?[A-Za-z0-9][A-Za-z0-9_+-]{0,15}$"
# A duration back from now, or an ISO 8601 date with an optional time and zone. A date that
# fits but does not exist (2025-02-30) is kb's 400, naming `since`.
SINCE_PATTERN = (
    r"^(\d{1,4}(\.\d{1,3})?[smhdw]|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?)$"
)


class FilterModel(Strict):
    """Which documents are searched; every part given must hold (each list: any of its items)."""

    source: list[Annotated[Text, StringConstraints(min_length=1, max_length=1000)]] = Field(
        default_factory=list,
        max_length=100,
        description="Globs matched against each document's path: `*.md`, `manuals/*.pdf`, a folder (`manuals`, "
        "`/srv/docs`). A glob starting with `/` is matched against the whole path, any other against its end.",
    )
    type: list[Annotated[str, StringConstraints(pattern=FILE_TYPE_PATTERN)]] = Field(
        default_factory=list, max_length=100, description="File types, as suffixes: md, pdf, txt..."
    )
    since: Annotated[str, StringConstraints(pattern=SINCE_PATTERN)] | None = Field(
        None,
        description="Only documents whose file was modified at or after this: a date (2025-01-31, midnight in the "
        "server's time zone), a date and time (2025-01-31T08:00:00Z) or a duration back from now (7d, 12h).",
    )

    def value(self) -> SearchFilter:
        return SearchFilter.of(self.source, self.type, self.since)


FILTER_FIELD = Field(None, description="Search only the documents this filter leaves (404 if it leaves none).")
RERANK_FIELD = Field(None, description="false: keep the fused order even if the server has a reranker.")


def search_filter(model: FilterModel | None) -> SearchFilter | None:
    return model.value() if model is not None else None


class TurnModel(Strict):
    role: Literal["user", "assistant"]
    content: Annotated[Text, StringConstraints(max_length=100_000)]


class _Search(Strict):
    k: UpTo100 | None = Field(None, description="Passages per query (default: top_k).")
    kb: KbName | None = KB_FIELD
    mode: SearchMode | None = Field(None, description="hybrid, dense or keyword (default: the search_mode setting).")
    unique_sources: bool | None = Field(None, description="At most one passage per document.")
    filter: FilterModel | None = FILTER_FIELD
    rerank: bool | None = RERANK_FIELD


class SearchOne(_Search):
    query: QueryText = Field(..., description="What to look for.")


class SearchMany(_Search):
    queries: list[QueryText] = Field(..., min_length=1, max_length=100, description="Several queries at once.")


def _search_kind(value: Any) -> str:
    return "many" if isinstance(value, dict) and "queries" in value else "one"


# `query` or `queries`, one of them: errors then speak of the body that was meant.
SearchRequest = Annotated[
    Annotated[SearchOne, Tag("one")] | Annotated[SearchMany, Tag("many")], Discriminator(_search_kind)
]


class AskRequest(Strict):
    question: QueryText = Field(..., description="The question.")
    top_k: UpTo50 | None = Field(None, description="Passages given to the model.")
    provider: Text | None = Field(None, description="Use only this provider of the chain.")
    no_cache: bool = Field(False, description="Neither read nor write the answer cache.")
    kb: KbName | None = KB_FIELD
    mode: SearchMode | None = Field(None, description="hybrid, dense or keyword (default: the search_mode setting).")
    unique_sources: bool | None = Field(None, description="At most one passage per document.")
    stream: bool = Field(False, description="Server-sent events: deltas, then one final event.")
    filter: FilterModel | None = FILTER_FIELD
    rerank: bool | None = RERANK_FIELD
    history: list[TurnModel] = Field(
        default_factory=list,
        max_length=200,
        description="The conversation before `question`, oldest first: passages are retrieved for the question as "
        "the conversation means it, and the turns reach the model's prompt.",
    )


class IngestRequest(Strict):
    paths: list[Annotated[Text, StringConstraints(min_length=1)]] = Field(
        ..., min_length=1, max_length=1000, description="Files and folders on the server, under its roots."
    )
    kb: KbName | None = KB_FIELD
    callback_url: Text | None = Field(None, description="Also notify this URL (signed) when the job ends.")
    include: list[Text] = Field(default_factory=list, max_length=100, description="Only files matching these globs.")
    exclude: list[Text] = Field(default_factory=list, max_length=100, description="Skip files matching these globs.")
    hidden: bool = Field(False, description="Also read hidden files and folders.")
    prune: bool = Field(False, description="Also remove documents under these folders that the filters leave out.")


UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["files"],
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1},
        "kb": {"type": "string", "pattern": KB_NAME_PATTERN},
        "callback_url": {"type": "string"},
    },
}


class TokenRequest(Strict):
    name: KbName = Field(..., description="A name for the token.")
    scope: Literal["read", "write", "admin"] = "read"
    kbs: list[KbName] = Field(default_factory=list, max_length=100, description="Only these knowledge bases.")
    rpm: Positive | None = Field(None, description="At most this many requests per minute.")
    expires: Annotated[str, StringConstraints(pattern=DURATION_PATTERN)] | None = Field(
        None, description="Lifetime, e.g. 12h, 30d."
    )


# -- answers ----------------------------------------------------------------------------------
class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(_Out):
    kind: str = Field(..., description="What went wrong, stable: kb_not_found, invalid_request, unauthorized...")
    message: str = Field(..., description="What is wrong and what to do, for people.")
    details: dict[str, Any] | None = Field(None, description="The knowledge base, path, field... as data.")
    type: str = Field(..., description="OpenAI's error type (invalid_request_error, not_found_error...).")
    param: str | None = Field(None, description="The parameter at fault, if one is.")
    code: str = Field(..., description="The same as kind.")


class ErrorBody(_Out):
    error: ErrorDetail


class Status(_Out):
    status: str


class HitModel(_Out):
    query: str
    rank: int
    score: float
    source: str
    chunk_id: str
    page: int | None
    lines: str | None
    locator: str | None
    heading: str | None
    text: str
    similarity: float | None
    keyword_rank: int | None
    rerank_score: float | None


class SearchResult(_Out):
    hits: list[HitModel]


class QueryHits(_Out):
    query: str
    hits: list[HitModel]


class SearchResults(_Out):
    results: list[QueryHits]


class CitationModel(_Out):
    n: int
    source: str
    chunk_id: str
    page: int | None
    lines: str | None
    locator: str | None
    text: str


class UsageModel(_Out):
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class AttemptModel(_Out):
    provider: str
    outcome: str
    error: str | None
    latency_ms: float
    message: str | None
    stage: Literal["answer", "condense", "rerank"]


class AnswerModel(_Out):
    question: str
    answer: str
    citations: list[CitationModel]
    provider: str
    model: str
    cached: bool
    usage: UsageModel
    latency_ms: dict[str, float]
    attempts: list[AttemptModel]
    dropped_citations: list[int]
    standalone_question: str = Field(..., description="What retrieval searched for (the question, unless a "
                                     "conversation came with it).")  # fmt: skip
    standalone_method: Literal["question", "condensed", "weighted"]


class JobModel(_Out):
    id: str
    kb: str
    kind: str
    state: Literal["queued", "running", "done", "failed"]
    params: dict[str, Any]
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    runs: int
    worker: str | None
    progress: dict[str, Any]
    report: dict[str, Any] | None
    error: str | None
    deliveries: list[dict[str, Any]]


class IngestAccepted(_Out):
    job_id: str
    job: JobModel


class JobList(_Out):
    jobs: list[JobModel]


class DocumentModel(_Out):
    source: str
    chunks: int
    bytes: int
    ingested_at: str


class DocumentList(_Out):
    documents: list[DocumentModel]


class Removed(_Out):
    documents: int
    chunks: int


class InfoModel(_Out):
    home: str
    kb: str
    model: str
    documents: int
    chunks: int
    bytes: int


class KbSummaryModel(_Out):
    kb: str
    documents: int
    chunks: int
    bytes: int


class KbList(_Out):
    kbs: list[KbSummaryModel]


class StatsModel(_Out):
    requests: dict[str, int]
    errors: int
    cache: dict[str, Any]
    latency_ms: dict[str, Any]
    providers: dict[str, Any]
    reranker: dict[str, Any] | None = Field(None, description="The reranker stage, when one ran or has a breaker.")
    drift: dict[str, Any]


class SeriesBucketModel(_Out):
    start: str = Field(..., description="When the bucket starts (ISO 8601, UTC); it lasts `bucket_s`.")
    requests: dict[str, int] = Field(..., description="Asks, searches and ingests.")
    errors: int
    latency_ms: dict[str, Any] = Field(..., description="p50, p95 and n of the total latency, per request kind.")
    cache: dict[str, Any] = Field(..., description="Asks, those answered from the cache, and their share.")
    usage: dict[str, Any] = Field(..., description="Tokens and cost of the answers not taken from the cache.")
    top1: dict[str, Any] = Field(..., description="Top-1 similarity: n, mean, p50, the share below low_match.")


class StatsSeriesModel(_Out):
    since: str
    until: str
    bucket_s: float
    low_match: float
    baseline: dict[str, Any] = Field(..., description="Top-1 similarity before the window: the drift baseline.")
    buckets: list[SeriesBucketModel]


class PrincipalModel(_Out):
    name: str = Field(..., description="The token's name; KB_SERVE_TOKENS for those, anyone on a server without "
                      "tokens.")  # fmt: skip
    scope: Literal["read", "write", "admin"]
    kbs: list[str] = Field(..., description="The knowledge bases it may use; empty: every one.")
    rpm: int | None = Field(..., description="Requests a minute it may send; null: no limit.")


class TokenModel(_Out):
    name: str
    scope: str
    kbs: list[str]
    rpm: int | None
    expires_at: str | None
    created_at: str | None
    revoked_at: str | None


class TokenCreated(TokenModel):
    token: str = Field(..., description="The secret, shown this once.")


class TokenList(_Out):
    tokens: list[TokenModel]


# The answers every route may give besides its own, in kb's error shape.
_ERRORS = {
    400: "The request does not make sense to kb (the message says why: a path that does not exist, a date it "
    "cannot read...).",
    401: "No bearer token, or one kb does not know, or one revoked or expired.",
    403: "The token may not do this, or not on this knowledge base; or a path outside the server's roots.",
    404: "The knowledge base, job, document or route does not exist, or no document matches a search filter.",
    409: "The request does not fit the current state (a job still running, a knowledge base being written).",
    413: "The body is larger than serve.max_body_mb (JSON) or serve.max_upload_mb (uploads).",
    422: "The body or a parameter does not fit this document's schema.",
    429: "Too many requests: the token's rate limit, or the requests this instance takes at once.",
    503: "A dependency is down (the vector store, shared state) or no provider answered.",
    504: "The request took longer than serve.request_timeout_s.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these statuses, in kb's error shape."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _ERRORS[status]}
        if status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[status] = entry
    return out


GUARDED = (401, 413, 422, 429, 504)  # what the guards and the framework may answer on any guarded route
