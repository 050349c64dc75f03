"""Access to one knowledge base: its adapters and the rules that keep readers and writers
consistent, for the core's actions and for `kb doctor` alike.

- Adapters (manifest, vector store) open lazily, once, even when threads race for them, so
  each operation pays only for what it touches.
- Operations run side by side; `close()` and a rebuild (`maintaining`) wait for them and hold
  new ones back (`Gate`).
- Writers take the per-KB write lock, so one writes at a time across threads, processes and
  instances; a write is marked while it runs, so the next writer knows when one died half-way.
- What other processes wrote becomes visible (`refresh`): how depends on where the KB lives.

Where it lives is a `Storage` strategy, chosen once by the Home: `LocalStorage` (local.py:
SQLite manifest and Chroma folder under KB_HOME, a file lock) or `SharedStorage` (shared.py: a
Chroma server, the manifest on Redis mirrored per instance, a lease on Redis). Each opens
`KbAccess` objects of its own kind; nothing above this package asks which one it has.
"""

from __future__ import annotations

from kb.access.base import KbAccess, Storage

__all__ = ["KbAccess", "Storage"]
