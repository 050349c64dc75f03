"""Benchmark corpora, generated offline and deterministically.

`prose_corpus` writes real English prose: the docstrings of the Python standard library,
one document per module, as Markdown, HTML and plain text in turn. `notes_corpus` cuts the
same prose into many note-sized files for the re-ingest benchmark.
"""

from __future__ import annotations

import html
import importlib
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path

_SKIP = ("test", "idlelib", "tkinter", "turtle", "lib2to3", "ensurepip", "venv", "__", "antigravity", "this")


def _module_texts() -> list[tuple[str, list[tuple[str, str]]]]:
    docs = []
    names = sorted(m.name for m in pkgutil.iter_modules() if m.module_finder.path.startswith(sys.base_prefix))
    for name in names:
        if name.startswith(_SKIP):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:
            continue
        sections = []
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 200:
                sections.append((attr, doc))
        intro = inspect.getdoc(module) or ""
        if intro or sections:
            docs.append((name, [(name, intro)] + sections))
    return docs


def prose_corpus(folder: Path, every: int = 1) -> int:
    """Writes every `every`-th module's documentation into `folder`; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i, (name, sections) in enumerate(_module_texts()[::every]):
        kind = ("md", "html", "txt")[i % 3]
        if kind == "md":
            text = "\n\n".join(
                f"{'#' if j == 0 else '##'} {title}\n\n{body}" for j, (title, body) in enumerate(sections)
            )
        elif kind == "html":
            body = "".join(f"<h2>{html.escape(t)}</h2>\n<p>{html.escape(b)}</p>\n" for t, b in sections)
            text = f"<html><head><title>{name}</title></head><body><h1>{name}</h1>\n{body}</body></html>"
        else:
            text = "\n\n".join(f"{title}\n\n{body}" for title, body in sections)
        path = folder / f"{name}.{kind}"
        path.write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total


def notes_corpus(folder: Path, count: int) -> int:
    """`count` Markdown notes of about 1–3 KB, three consecutive docstring sections each
    (cycling through the standard library's); returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    sections = [(f"{name}.{title}", body[:1200]) for name, parts in _module_texts() for title, body in parts if body]
    total = 0
    for i in range(count):
        picked = [sections[(i * 3 + j) % len(sections)] for j in range(3)]
        text = f"# Note {i}\n\n" + "\n\n".join(f"## {title}\n\n{body}" for title, body in picked)
        (folder / f"note_{i:05d}.md").write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total
