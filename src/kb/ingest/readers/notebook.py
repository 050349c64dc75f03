"""Jupyter notebooks (.ipynb): Markdown and code cells as text, one section per cell with
its number as the locator ("cell 7"). Outputs and attachments are left out: they are
results, images and widget state rather than what the author wrote. Headings in Markdown
cells set the heading path of the cells that follow them, as in the rendered notebook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.decoding import decode
from kb.ingest.readers.text import HeadingPath, markdown_headings


def read_notebook(path: Path, data: bytes) -> Document:
    text, _encoding = decode(data)
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(f"not a Jupyter notebook (invalid JSON at line {exc.lineno}: {exc.msg})") from exc
    except RecursionError as exc:
        raise IngestError("not a Jupyter notebook (JSON nested too deeply)") from exc
    headings = HeadingPath()
    sections: list[Section] = []
    first_title: str | None = None
    for number, cell in enumerate(_cells(notebook), start=1):
        kind, source = cell.get("cell_type"), _source(cell)
        if kind == "markdown":
            cell_sections, title = _markdown(source, number, headings)
            sections += cell_sections
            first_title = first_title or title
        elif kind == "heading":  # nbformat 3
            level = cell.get("level")
            headings.enter(level if isinstance(level, int) else 1, " ".join(source.split()))
        elif kind == "code" and source.strip():
            sections.append(Section(text=source.strip("\n"), heading=headings.current, locator=f"cell {number}"))
    metadata = notebook.get("metadata")
    title = metadata.get("title") if isinstance(metadata, dict) else None
    return Document(source=str(path), sections=sections, title=str(title) if title else first_title)


def _cells(notebook: Any) -> list[dict]:
    if isinstance(notebook, dict) and isinstance(notebook.get("cells"), list):  # nbformat 4
        cells = notebook["cells"]
    elif isinstance(notebook, dict) and isinstance(notebook.get("worksheets"), list):  # nbformat 3
        cells = [c for sheet in notebook["worksheets"] if isinstance(sheet, dict) for c in sheet.get("cells") or []]
    else:
        raise IngestError("not a Jupyter notebook (JSON without a list of cells)")
    return [c for c in cells if isinstance(c, dict)]


def _source(cell: dict) -> str:
    source = cell.get("source", cell.get("input", ""))
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _markdown(source: str, number: int, headings: HeadingPath) -> tuple[list[Section], str | None]:
    """The cell's text, cut at its headings; the path carries on to the next cells."""
    lines = source.splitlines()
    found = markdown_headings(lines)
    sections: list[Section] = []
    start = 0
    for i in [*sorted(found), len(lines)]:
        text = "\n".join(lines[start:i]).strip()
        if text:
            sections.append(Section(text=text, heading=headings.current, locator=f"cell {number}"))
        if i in found:
            headings.enter(*found[i])
        start = i + 1
    title = next((t for level, t in found.values() if level == 1), None)
    return sections, title
