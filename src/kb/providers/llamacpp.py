"""A local GGUF model through llama-cpp-python (optional extra: pip install 'kb[local]')."""

from __future__ import annotations

from kb.config import ProviderSettings
from kb.errors import ProviderError, ProviderRejected
from kb.providers.base import Completion, CompletionRequest, Usage, require_text


class LlamaCppProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.model = settings.model or settings.model_path or "llamacpp"
        self._llm = None

    def _load(self):
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ProviderRejected(
                    f"provider {self.name!r} needs llama-cpp-python: pip install 'kb[local]' "
                    '(on CPUs with AMX build with CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON")',
                    provider=self.name,
                ) from exc
            try:
                self._llm = Llama(
                    model_path=self.settings.model_path, n_ctx=self.settings.context_tokens or 4096, verbose=False
                )
            except Exception as exc:  # a missing or broken GGUF file raises ValueError and others
                raise ProviderRejected(
                    f"{self.name}: cannot load the model {self.settings.model_path} ({exc}); check model_path",
                    provider=self.name,
                ) from exc
        return self._llm

    def complete(self, request: CompletionRequest) -> Completion:
        llm = self._load()
        messages, given = request.prompt.render(self.settings.context_tokens or 4096, self.settings.max_tokens)
        try:
            out = llm.create_chat_completion(
                messages=messages, max_tokens=self.settings.max_tokens, temperature=self.settings.temperature
            )
        except Exception as exc:  # native errors surface as assorted types
            raise ProviderError(f"{self.name}: local model failed ({exc})", provider=self.name) from exc
        usage = out.get("usage") or {}
        return Completion(
            text=require_text(out["choices"][0]["message"]["content"] or "", self.name),
            provider=self.name,
            model=self.model,
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 0.0),
            passages_given=given,
        )
