"""What the root options (--kb, --debug) give every command: the typer context's object.

Commands reach the core through it: `library(ctx)` for home-wide operations and `kb(ctx)`
for the selected knowledge base, both closed when the command ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from kb.cli import render

if TYPE_CHECKING:
    from kb.config import Settings
    from kb.knowledge_base import KnowledgeBase
    from kb.library import Library


@dataclass
class CliContext:
    kb: str | None = None
    debug: bool = False
    _library: Library | None = None
    _opened: KnowledgeBase | None = None

    def settings(self) -> Settings:
        from kb.config import load_settings

        settings = load_settings(kb=self.kb)
        for warning in settings.warnings:
            render.warning(warning)
        return settings

    def library(self) -> Library:
        if self._library is None:
            from kb.library import Library

            self._library = Library(self.settings())
            self._library.on_wait = self._library.on_notice = render.note
        return self._library

    def knowledge_base(self) -> KnowledgeBase:
        if self._opened is None:
            self._opened = self.library().kb()
        return self._opened

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None
        if self._library is not None:
            self._library.close()
            self._library = None


def of(ctx: typer.Context) -> CliContext:
    """The root context's object (set by the root callback)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliContext):
        obj = ctx.find_root().obj = CliContext()
    return obj


def library(ctx: typer.Context) -> Library:
    return of(ctx).library()


def kb(ctx: typer.Context) -> KnowledgeBase:
    """The knowledge base --kb selects."""
    return of(ctx).knowledge_base()
