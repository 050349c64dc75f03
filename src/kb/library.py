"""The knowledge bases of one KB_HOME, each opened once and shared by a long-lived process.

The HTTP service, the MCP server and the job worker serve many knowledge bases from one
process: they hold one Library, which hands out one KnowledgeBase per name (thread-safe,
sharing the home's cache, metrics, breakers and encoders).
"""

from __future__ import annotations

import threading

from kb.config import Settings
from kb.facade import KnowledgeBase
from kb.home import Home


class Library:
    def __init__(self, settings: Settings, batch_queries: bool = False) -> None:
        self.settings = settings
        self.home = Home(settings, batch_queries)
        self._kbs: dict[str, KnowledgeBase] = {}
        self._lock = threading.Lock()

    def kb(self, name: str | None = None) -> KnowledgeBase:
        """The knowledge base `name` (default: the configured one). Opening one creates
        nothing, and reads of one that does not exist raise KbNotFound. Only existing
        knowledge bases are kept, so clients naming typos cannot grow the process."""
        name = (name or "").strip() or self.settings.kb
        settings = self.home.settings_for(name)  # a malformed name is a ConfigError
        with self._lock:
            kb = self._kbs.get(name)
            if kb is None:
                kb = KnowledgeBase(settings, self.home)
                if self.home.exists(name):
                    self._kbs[name] = kb
            return kb

    def forget(self, name: str) -> None:
        """Drops a deleted knowledge base's instance."""
        with self._lock:
            kb = self._kbs.pop(name, None)
        if kb is not None:
            kb.close()

    def close(self) -> None:
        with self._lock:
            kbs, self._kbs = list(self._kbs.values()), {}
        for kb in kbs:
            kb.close()
        self.home.close()
