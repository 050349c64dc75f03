"""Any OpenAI-compatible Chat Completions endpoint, through the official `openai` package.

The client's own retries are off: retrying is `Retrying`'s job, so that every retry
decision reads one `retryable` property. openai's exceptions become kb's here.
"""

from __future__ import annotations

from typing import Any

from kb.config import ProviderSettings
from kb.errors import BadResponse, ProviderError, ProviderRejected, ProviderTimeout, ProviderUnavailable, RateLimited
from kb.providers import pricing
from kb.providers.base import Completion, CompletionRequest, Usage, require_text


def _retry_after(headers) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the backoff schedule applies instead


class OpenAIProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.model = settings.model or ""
        self._client: Any = None

    def _openai(self):
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self.settings.api_key() or "not-needed",  # local servers accept any key
                base_url=self.settings.base_url,
                timeout=self.settings.timeout_s,
                max_retries=0,
            )
        return self._client

    def complete(self, request: CompletionRequest) -> Completion:
        import openai

        window = pricing.context_tokens(self.model, self.settings.context_tokens)
        messages, given = request.prompt.render(window, self.settings.max_tokens)
        try:
            if request.stream is not None:
                text, usage = self._stream(messages, request)
            else:
                text, usage = self._once(messages)
        except openai.APITimeoutError as exc:
            raise ProviderTimeout(
                f"{self.name}: no answer within {self.settings.timeout_s:g}s", provider=self.name
            ) from exc
        except openai.APIConnectionError as exc:
            raise ProviderUnavailable(
                f"{self.name}: cannot connect to {self.settings.base_url or 'the API'} ({exc.__cause__ or exc})",
                provider=self.name,
            ) from exc
        except openai.RateLimitError as exc:
            raise RateLimited(
                f"{self.name}: rate limited (429)", provider=self.name, retry_after=_retry_after(exc.response.headers)
            ) from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status >= 500 or status in (408, 409):
                raise ProviderUnavailable(f"{self.name}: server error {status}", provider=self.name) from exc
            hint = (
                f"check {self.settings.api_key_env or 'the API key'}"
                if status in (401, 403)
                else "check the provider's settings"
            )
            raise ProviderRejected(f"{self.name}: request rejected with {status}; {hint}", provider=self.name) from exc
        except (openai.APIResponseValidationError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise BadResponse(f"{self.name}: malformed response ({type(exc).__name__})", provider=self.name) from exc
        except openai.APIError as exc:
            raise ProviderError(f"{self.name}: {exc}", provider=self.name) from exc
        require_text(text, self.name)
        usage.cost_usd = pricing.cost(
            pricing.price(self.model, self.settings.input_cost_per_mtok, self.settings.output_cost_per_mtok),
            usage.input_tokens,
            usage.output_tokens,
        )
        return Completion(text=text, provider=self.name, model=self.model, usage=usage, passages_given=given)

    def _once(self, messages: list[dict]) -> tuple[str, Usage]:
        resp = self._openai().chat.completions.create(
            model=self.model,
            messages=messages,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
        )
        if not resp.choices or resp.choices[0].message is None:
            raise ValueError("no choices")
        text = resp.choices[0].message.content or ""
        u = resp.usage
        return text, Usage(u.prompt_tokens if u else 0, u.completion_tokens if u else 0)

    def _stream(self, messages: list[dict], request: CompletionRequest) -> tuple[str, Usage]:
        sink = request.stream
        assert sink is not None
        stream = self._openai().chat.completions.create(
            model=self.model,
            messages=messages,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        usage = Usage()
        try:
            for event in stream:
                if event.usage:
                    usage = Usage(event.usage.prompt_tokens, event.usage.completion_tokens)
                for choice in event.choices or []:
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        parts.append(delta)
                        sink.text(delta)
        except Exception:
            if parts:
                sink.reset(f"{self.name} failed mid-answer")
            raise
        return "".join(parts), usage
