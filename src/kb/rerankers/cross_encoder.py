"""A local reranker: a sentence-transformers CrossEncoder folder (`[reranker] kind = "local"`,
`model_path`). sentence-transformers (and torch) are imported on the first rerank, in the
process that reranks; the folder is checked when the reranker is built."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from kb.config.settings import RERANKER
from kb.errors import ConfigError, ProviderRejected


class CrossEncoderReranker:
    def __init__(self, model_path: str) -> None:
        self.name = RERANKER
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"reranker: model_path {str(path)!r} is not a folder; give the folder of a sentence-transformers "
                'CrossEncoder (config.json and its weights), or set [reranker] kind = "none"',
                path=str(path),
            )
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"reranker: {str(path)!r} holds no config.json, so it is not a CrossEncoder model folder",
                path=str(path),
            )
        self.path = path
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import CrossEncoder
                except ImportError as exc:
                    raise ProviderRejected(f"{self.name}: a local reranker needs sentence-transformers "
                                           "(pip install sentence-transformers)", provider=self.name) from exc  # fmt: skip
                try:
                    self._model = CrossEncoder(str(self.path), local_files_only=True)
                except Exception as exc:
                    raise ProviderRejected(f"{self.name}: cannot load the CrossEncoder in {self.path} ({exc})",
                                           provider=self.name) from exc  # fmt: skip
            return self._model

    def rerank(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        scores = self._load().predict([(query, document) for document in documents])
        ranked = sorted(enumerate(float(s) for s in scores), key=lambda pair: -pair[1])
        return ranked[:top_n]
