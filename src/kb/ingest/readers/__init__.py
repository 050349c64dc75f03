"""Readers turn one file into a Document. The registry maps file suffixes to readers.

Every reader gets the path and the file's bytes (read once by the pipeline, which also
hashes them) and returns sections that keep the structure chunking needs: heading paths
with line numbers for Markdown and text, headings for HTML, Word, ODT and EPUB, pages for
PDF, and a locator where neither applies (slides, notebook cells, CSV rows, messages and
attachments). A file a reader cannot read raises IngestError with a reason a user can act
on; no library exception leaves a reader. The zip-based formats share the checks in
archive.py. Parsing libraries are imported inside the readers, so that importing the
registry (as `kb --help` does) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kb.documents import Document
from kb.errors import IngestError
from kb.ingest.readers.docx import read_docx
from kb.ingest.readers.epub import read_epub
from kb.ingest.readers.html import read_html
from kb.ingest.readers.mail import read_eml, read_mbox
from kb.ingest.readers.notebook import read_notebook
from kb.ingest.readers.odt import read_odt
from kb.ingest.readers.pdf import read_pdf
from kb.ingest.readers.pptx import read_pptx
from kb.ingest.readers.tabular import read_csv
from kb.ingest.readers.text import read_markdown, read_text

Reader = Callable[[Path, bytes], Document]

READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".mdown": read_markdown,
    ".txt": read_text,
    ".text": read_text,
    ".rst": read_text,
    ".adoc": read_text,
    ".org": read_text,
    ".log": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".pdf": read_pdf,
    # Macro-enabled variants are read like the plain ones (macros are never run, only
    # noted); a slide show (.ppsx) is a deck saved to open in presenter mode. Templates
    # (.dotx, .potx) are left out: they are scaffolding, not documents.
    ".docx": read_docx,
    ".docm": read_docx,
    ".pptx": read_pptx,
    ".pptm": read_pptx,
    ".ppsx": read_pptx,
    ".odt": read_odt,
    ".epub": read_epub,
    ".ipynb": read_notebook,
    ".csv": read_csv,
    ".tsv": read_csv,
    ".eml": read_eml,
    ".mbox": read_mbox,
}


def reader_for(path: Path) -> Reader | None:
    """The reader for `path`, or None for a type kb does not read. Files without a suffix
    (README, NOTES) are read as text; decoding refuses them if they are binary."""
    suffix = path.suffix.lower()
    if not suffix:
        return read_text
    return READERS.get(suffix)


def read(path: Path, data: bytes) -> Document:
    reader = reader_for(path)
    if reader is None:
        raise IngestError(f"unsupported file type {path.suffix or '(none)'}")
    return reader(path, data)
